FROM debian:12
RUN useradd -u123456789 bob
