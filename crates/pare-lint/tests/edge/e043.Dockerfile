FROM debian:12
ENV A=1
ENV A=2 B=$A
