FROM debian:12 AS build
RUN true
