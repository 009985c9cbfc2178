FROM debian:12
RUN uv pip install flask
