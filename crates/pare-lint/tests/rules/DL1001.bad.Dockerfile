FROM debian:12
# hadolint ignore=DL3003
RUN cd /tmp && make
