FROM debian:12
RUN zypper ref
