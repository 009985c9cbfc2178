FROM debian:12
COPY --chown=1:1 x y
