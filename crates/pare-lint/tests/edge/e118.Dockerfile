FROM debian:12
WORKDIR C:\\app
