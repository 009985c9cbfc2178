FROM debian:12
RUN yum update -y && yum clean all
