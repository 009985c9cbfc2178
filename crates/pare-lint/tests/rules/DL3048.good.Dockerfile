FROM debian:12
LABEL org.opencontainers.image.title=x maintainer=me
