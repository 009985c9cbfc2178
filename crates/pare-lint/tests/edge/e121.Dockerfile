FROM debian:12
RUN service ssh start
