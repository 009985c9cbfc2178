FROM fedora:40
RUN dnf install httpd-2.4 && dnf clean all
