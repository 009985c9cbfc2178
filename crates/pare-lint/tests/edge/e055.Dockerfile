FROM debian:12
RUN wget -o log https://x
