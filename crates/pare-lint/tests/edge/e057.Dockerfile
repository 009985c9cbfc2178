FROM debian:12 AS a
RUN wget -q x
FROM debian:12
RUN curl -fsS y
