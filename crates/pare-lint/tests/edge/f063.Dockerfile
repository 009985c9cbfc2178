FROM debian:12
RUN apt-get autoremove -y
