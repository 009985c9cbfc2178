FROM --platform=linux/amd64 debian:12
