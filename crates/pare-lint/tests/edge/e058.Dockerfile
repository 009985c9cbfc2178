FROM debian:12 AS a
USER root
FROM debian:12
USER 1000
