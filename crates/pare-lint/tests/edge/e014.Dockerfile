FROM debian:12
RUN python -m pip install flask
