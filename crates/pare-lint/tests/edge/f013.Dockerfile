FROM debian:12
USER 0
