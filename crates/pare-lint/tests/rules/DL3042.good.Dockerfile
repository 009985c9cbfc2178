FROM debian:12
RUN pip install --no-cache-dir flask==3.0
FROM debian:12
ENV PIP_NO_CACHE_DIR=1
RUN pip install flask==3.0
