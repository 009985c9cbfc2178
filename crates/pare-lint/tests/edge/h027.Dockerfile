FROM debian:12
HEALTHCHECK --interval=5s --timeout=3s \
  CMD curl -f http://x || exit 1
