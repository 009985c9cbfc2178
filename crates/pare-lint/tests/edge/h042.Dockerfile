FROM debian:12
RUN --network=host --security=insecure echo
