FROM fedora:40
ONBUILD RUN dnf install -y httpd && dnf clean all
