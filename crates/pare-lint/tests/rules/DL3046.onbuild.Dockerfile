FROM debian:12
ONBUILD RUN useradd -u 123456789 bob
