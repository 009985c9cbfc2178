FROM debian:12
RUN yum install -y python3-devel && yum clean all
