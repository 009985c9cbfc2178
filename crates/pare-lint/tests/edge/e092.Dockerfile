FROM debian:12
RUN useradd --uid=12345678 bob
