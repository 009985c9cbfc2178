FROM debian:12
COPY --link --chmod=755 a /b
