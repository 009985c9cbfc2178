FROM debian:12
RUN adduser -u 1234567 app
