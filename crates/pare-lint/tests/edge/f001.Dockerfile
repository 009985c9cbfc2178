FROM debian:12 AS a
WORKDIR /app
FROM debian:12
COPY x y
