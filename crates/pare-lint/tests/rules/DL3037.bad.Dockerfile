FROM opensuse/leap:15
RUN zypper install -y httpd && zypper clean
