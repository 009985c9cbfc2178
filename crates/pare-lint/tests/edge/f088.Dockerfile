FROM debian:12
EXPOSE 80-90/tcp
