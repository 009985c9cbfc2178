FROM debian:12
ADD x.zip /tmp/
