FROM debian:12
USER 1000:group
