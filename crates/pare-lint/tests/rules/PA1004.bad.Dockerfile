FROM debian:12
ADD https://example.com/tool.tgz /opt/
