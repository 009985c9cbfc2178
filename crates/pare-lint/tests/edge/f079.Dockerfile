FROM debian:12
LABEL maintainer="me <me@x.io>"
