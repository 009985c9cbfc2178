FROM debian:12
RUN pip install --no-cache-dir flask[async]==2.0
