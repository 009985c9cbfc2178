FROM debian:12
ARG A=1
ENV B=$A C=$B
