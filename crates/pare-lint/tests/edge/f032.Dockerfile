FROM debian:12
RUN pipx install black
