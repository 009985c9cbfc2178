FROM debian:12
RUN dnf -y install x-1.0 && dnf clean all
