FROM centos:7
RUN yum install httpd-2.4 && yum clean all
