FROM debian:12
LABEL a..b=1
