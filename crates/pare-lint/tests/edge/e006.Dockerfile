FROM debian:12
RUN apt-get update && apt-get install -y --no-install-recommends curl=1 && apt-get clean && rm -rf /var/lib/apt/lists/*
