FROM debian:12
RUN dnf install -y httpd-2.4
