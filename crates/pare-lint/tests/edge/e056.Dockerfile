FROM debian:12
RUN wget -q x
RUN curl -fsS y
