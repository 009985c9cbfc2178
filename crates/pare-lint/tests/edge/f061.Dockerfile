FROM debian:12
RUN apt-get dist-upgrade -y
