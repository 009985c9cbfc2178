FROM debian:12
RUN vim x
