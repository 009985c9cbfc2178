FROM debian:12
ADD https://x/y.zip /
