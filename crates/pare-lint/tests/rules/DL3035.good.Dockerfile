FROM opensuse/leap:15
RUN zypper refresh
