FROM debian:12
RUN --mount=type=secret,id=x cat /run/secrets/x
