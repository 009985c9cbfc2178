FROM debian:12 AS Build
FROM debian:12
COPY --from=build /a /b
