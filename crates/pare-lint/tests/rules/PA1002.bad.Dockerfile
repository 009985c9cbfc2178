FROM debian:12-slim
RUN apt-get install -y --no-install-recommends gcc=12 libssl-dev=3
USER 1000
