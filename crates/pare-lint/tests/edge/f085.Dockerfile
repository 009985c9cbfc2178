FROM ubuntu:22.04@sha256:abc AS x
