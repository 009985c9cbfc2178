FROM debian:12
ONBUILD RUN apt install -y curl
