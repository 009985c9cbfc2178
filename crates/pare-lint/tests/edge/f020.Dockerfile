FROM debian:12
RUN yum install -y x-1.0 && rm -rf /var/cache/yum
