FROM debian:12
ADD app.tar.gz /opt/
