FROM debian:12
RUN --mount=type=cache echo
