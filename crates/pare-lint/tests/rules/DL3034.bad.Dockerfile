FROM opensuse/leap:15
RUN zypper install httpd=2.4 && zypper clean
