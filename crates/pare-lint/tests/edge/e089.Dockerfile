FROM debian:12
RUN zypper --non-interactive in httpd=2
