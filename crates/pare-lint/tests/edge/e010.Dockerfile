FROM debian:12
RUN apt-get -q=2 install --no-install-recommends curl=1
