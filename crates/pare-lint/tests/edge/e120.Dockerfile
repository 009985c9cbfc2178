# syntax=docker/dockerfile:1
# escape=`
FROM debian:12
RUN echo a `
 && cd /x
