FROM debian:12
RUN useradd -r -u 999 app
