FROM debian:12
RUN pip install -U pip
