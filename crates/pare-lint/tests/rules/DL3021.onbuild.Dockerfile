FROM debian:12
ONBUILD COPY a b /dest
