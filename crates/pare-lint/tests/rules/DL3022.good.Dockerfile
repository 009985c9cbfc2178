FROM debian:12 AS builder
FROM debian:12
COPY --from=builder /a /a
COPY --from=0 /a /b
COPY --from=nginx:1.25 /a /c
