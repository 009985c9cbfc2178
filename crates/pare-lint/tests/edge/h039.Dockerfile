FROM debian:12
RUN --mount=type=ssh git clone x
