FROM debian:12
COPY --from=builder /a /a
