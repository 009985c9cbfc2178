FROM debian:12 AS a
USER root
FROM a
RUN x
