FROM debian:12 AS a
WORKDIR /app
FROM a AS b
COPY x y
