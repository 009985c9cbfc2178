FROM debian:12
RUN pip install --no-cache-dir --index-url https://x flask==1
