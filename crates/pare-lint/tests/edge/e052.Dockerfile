FROM debian:12
RUN wget -O /x https://x
