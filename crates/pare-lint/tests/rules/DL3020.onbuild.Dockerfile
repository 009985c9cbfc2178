FROM debian:12
ONBUILD ADD app.py /app/
