FROM debian:12
RUN yum -y install httpd
