FROM fedora:40
ONBUILD RUN dnf install httpd-2.4 && dnf clean all
