FROM debian:12
ONBUILD ADD https://example.com/tool.tgz /opt/
