FROM debian:12
RUN apt-cache show x
