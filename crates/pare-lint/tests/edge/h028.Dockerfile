FROM debian:12
ONBUILD RUN cd /x
