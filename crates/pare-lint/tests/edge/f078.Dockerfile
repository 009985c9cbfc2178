FROM debian:12
ENV A=$A:1
