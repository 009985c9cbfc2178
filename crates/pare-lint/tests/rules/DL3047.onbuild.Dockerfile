FROM debian:12
ONBUILD RUN wget https://example.com/x
