FROM debian:12
USER root
RUN id
USER 1000
