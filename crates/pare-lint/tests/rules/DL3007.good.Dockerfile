FROM debian:12
FROM debian:latest@sha256:abc
