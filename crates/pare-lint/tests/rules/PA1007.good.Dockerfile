FROM debian:12
RUN --mount=type=cache,target=/var/cache/apt apt-get update && apt-get install -y --no-install-recommends curl=1
RUN apt-get update && apt-get install -y --no-install-recommends curl=1 && rm -rf /var/lib/apt/lists/*
