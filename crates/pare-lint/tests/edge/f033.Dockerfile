FROM debian:12
RUN npm ci
