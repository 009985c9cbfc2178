FROM debian:12
COPY x .
