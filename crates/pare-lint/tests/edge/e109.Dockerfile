FROM debian:12
COPY --from=1 /a /b
