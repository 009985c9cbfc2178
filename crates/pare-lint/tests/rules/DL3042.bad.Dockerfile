FROM debian:12
RUN pip install flask==3.0
