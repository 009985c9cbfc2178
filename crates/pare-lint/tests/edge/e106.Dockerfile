FROM debian:12
ADD a.txt b.tar.gz /x/
