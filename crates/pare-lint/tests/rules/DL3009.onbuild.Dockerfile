FROM debian:12
ONBUILD RUN apt-get update
