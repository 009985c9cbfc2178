FROM debian:12
ONBUILD COPY id_rsa /root/.ssh/id_rsa
