FROM debian:12
RUN dnf install -y @nodejs:18 && dnf clean all
