FROM debian:12
WORKDIR ~/x
