FROM debian:12
RUN yum install -y httpd-2.4 && yum clean all && rm -rf /var/cache/yum
