FROM opensuse/leap:15
ONBUILD RUN zypper install httpd=2.4 && zypper clean
