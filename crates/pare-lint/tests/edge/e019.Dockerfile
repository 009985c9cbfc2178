FROM debian:12
RUN pip install --no-cache-dir git+https://github.com/x/y.git
