FROM debian:12
RUN --mount=type=tmpfs echo
