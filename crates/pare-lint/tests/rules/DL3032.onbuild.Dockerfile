FROM centos:7
ONBUILD RUN yum install -y httpd-2.4
