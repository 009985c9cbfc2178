FROM debian:12
LABEL maintainer=me
