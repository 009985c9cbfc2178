FROM debian:12
RUN apt-get -y install --no-install-recommends curl
