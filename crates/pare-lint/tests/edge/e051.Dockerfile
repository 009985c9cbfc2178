FROM debian:12
RUN wget -nv https://x
