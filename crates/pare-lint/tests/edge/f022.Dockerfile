FROM debian:12
RUN zypper install -y x=1 && zypper cc
