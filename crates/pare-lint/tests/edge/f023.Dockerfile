FROM debian:12
RUN zypper -n in x=1 && zypper clean -a
