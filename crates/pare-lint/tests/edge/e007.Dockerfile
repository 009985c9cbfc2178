FROM debian:12
RUN apt-get update && apt-get install -y --no-install-recommends curl=1 && rm -r /var/lib/apt/lists
