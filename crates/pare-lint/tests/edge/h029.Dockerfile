FROM debian:12 as builder
FROM builder
