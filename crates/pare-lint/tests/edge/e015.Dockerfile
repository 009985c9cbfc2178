FROM debian:12
RUN python3 -m pip install --no-cache-dir flask
