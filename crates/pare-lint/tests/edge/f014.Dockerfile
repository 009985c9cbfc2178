FROM debian:12
USER root
USER 1000
USER root
