FROM debian:12
ONBUILD RUN wget -q x && curl -fsS y
