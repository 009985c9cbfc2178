FROM debian:12
RUN apt-get install -qy --no-install-recommends curl=1
RUN apt-get -qq install --no-install-recommends curl=1
