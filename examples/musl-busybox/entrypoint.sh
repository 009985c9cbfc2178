#!/bin/sh
# Runs under busybox sh: records the start, then hands over to the musl-linked server.
set -e
mkdir -p /tmp/run
echo "started=$(date +%s) by $(id -u)" > /tmp/run/status
exec /usr/bin/hello-server 8080 /srv/www
