FROM debian:12
RUN cd /x || exit 1
