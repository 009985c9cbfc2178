FROM debian:12
RUN kill -9 1 && top -b
