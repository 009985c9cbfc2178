FROM debian:12
WORKDIR /app
COPY app.py app.py
COPY x /abs
