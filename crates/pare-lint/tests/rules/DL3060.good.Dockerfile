FROM debian:12
RUN yarn install && yarn cache clean
