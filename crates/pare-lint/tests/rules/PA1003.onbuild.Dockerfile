FROM debian:12
ONBUILD RUN apk upgrade
