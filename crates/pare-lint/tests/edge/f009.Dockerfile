FROM debian:12
COPY --from=0 a b c
