FROM debian:12
ADD --chown=1:1 app.tar.gz /
