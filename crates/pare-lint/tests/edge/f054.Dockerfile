FROM debian:12
RUN apk add --no-cache x
