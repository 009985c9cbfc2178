FROM debian:12
ONBUILD RUN apt-get install --no-install-recommends curl=1
