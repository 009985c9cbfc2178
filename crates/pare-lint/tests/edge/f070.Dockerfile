FROM debian:12
RUN free -m
