FROM debian:12
HEALTHCHECK --interval=5m CMD curl -f http://localhost/ || exit 1
