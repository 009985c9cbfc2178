FROM debian:12
RUN wget -O - https://y | tar xz
