FROM debian:12
LABEL com.docker.x=1
