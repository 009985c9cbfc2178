FROM opensuse/leap:15
RUN zypper dist-upgrade -y
