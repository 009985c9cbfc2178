FROM debian:12
WORKDIR /app
COPY x .
