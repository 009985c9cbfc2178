FROM debian:12
RUN curl -fsS x && curl -fsS y
