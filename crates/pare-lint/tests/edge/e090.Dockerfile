FROM debian:12
RUN zypper up
