FROM debian:12
RUN microdnf install httpd-1.2 && microdnf clean all
