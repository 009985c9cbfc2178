FROM debian:12
RUN wget --no-verbose https://y
