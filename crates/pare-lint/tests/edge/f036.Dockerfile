FROM debian:12
RUN yarn add express
