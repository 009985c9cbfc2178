FROM debian:12
RUN apt-get install --assume-yes --no-install-recommends curl=1
