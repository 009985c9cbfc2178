FROM debian:12
ENV A 1
