FROM debian:12
LABEL a_b=1
