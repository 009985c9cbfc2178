FROM debian:12
RUN pip install --no-cache-dir ./dist/app.whl
