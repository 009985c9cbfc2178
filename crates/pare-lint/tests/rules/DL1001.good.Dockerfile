FROM debian:12
# Build in /tmp.
WORKDIR /tmp
RUN make
