FROM debian:12
ONBUILD RUN sudo ls
