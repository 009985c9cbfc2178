FROM debian:12
USER root
RUN x
