FROM debian:12
RUN apt-get install --yes --no-install-recommends curl=1
