FROM debian:12
ADD --checksum=sha256:0123 https://example.com/tool.tgz /opt/
ADD local.tgz /opt/
