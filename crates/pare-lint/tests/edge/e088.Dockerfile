FROM debian:12
RUN zypper -n install httpd
