FROM debian:12
RUN ps aux | grep x
