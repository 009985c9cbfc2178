FROM debian:12
ONBUILD RUN pip install flask==3.0
