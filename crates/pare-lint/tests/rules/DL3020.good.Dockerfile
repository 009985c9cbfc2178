FROM debian:12
ADD https://example.com/a.tgz /tmp/
ADD rootfs.tar.xz /
