FROM debian:12 AS build
RUN apt-get install -y --no-install-recommends gcc=12
FROM debian:12-slim
RUN apt-get install -y --no-install-recommends libssl3=3
USER 1000
