FROM debian:12
RUN apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confold curl=1
