FROM fedora:40
ONBUILD RUN dnf install -y httpd-2.4
