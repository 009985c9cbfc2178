FROM debian:12
RUN --mount=type=cache,target=/x echo a
RUN echo b
