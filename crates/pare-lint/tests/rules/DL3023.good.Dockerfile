FROM debian:12 AS base
FROM debian:12 AS app
COPY --from=base /a /b
