FROM debian:12
RUN mount /x
