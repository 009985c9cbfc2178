FROM debian:12
RUN apt update
