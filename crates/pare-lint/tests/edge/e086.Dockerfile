FROM debian:12
RUN microdnf install -y httpd
