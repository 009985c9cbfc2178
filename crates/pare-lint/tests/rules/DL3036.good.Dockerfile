FROM opensuse/leap:15
RUN zypper install -y httpd=2.4 && zypper clean
