FROM debian:12
ONBUILD RUN ps aux
