FROM debian:12
ADD x.tar.gz x.txt /tmp/
