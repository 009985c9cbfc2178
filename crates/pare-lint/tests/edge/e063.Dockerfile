ARG X=a
FROM debian:12
COPY --from=$X /a /b
