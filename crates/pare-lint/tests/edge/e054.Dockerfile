FROM debian:12
RUN wget --quiet https://x
