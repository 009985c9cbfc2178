FROM debian:12
RUN dnf install -y x-1.0 && rm -rf /var/cache/dnf
