FROM debian:12
RUN pip install "flask>=1.0"
