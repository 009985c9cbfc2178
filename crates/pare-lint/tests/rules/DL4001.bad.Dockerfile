FROM debian:12
RUN wget -q x && curl -fsS y
