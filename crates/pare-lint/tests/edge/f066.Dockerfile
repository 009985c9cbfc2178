FROM debian:12
RUN shutdown -h now
