FROM opensuse/leap:15
ONBUILD RUN zypper install -y httpd=2.4
