FROM debian:12
LABEL a=b \
      c=d
RUN cd /x
