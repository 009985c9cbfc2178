FROM opensuse/leap:15
ONBUILD RUN zypper dist-upgrade -y
