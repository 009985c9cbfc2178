FROM debian:12
RUN apt-get -y --no-install-recommends install x=1
