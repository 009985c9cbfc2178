FROM debian:12
EXPOSE 80/udp 65536/tcp
