FROM debian:12
SHELL ["pwsh", "-c"]
RUN a | b
