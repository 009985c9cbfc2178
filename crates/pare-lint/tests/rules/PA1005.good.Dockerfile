FROM debian:12
COPY .env.example /app/.env.example
COPY app.py /app/
