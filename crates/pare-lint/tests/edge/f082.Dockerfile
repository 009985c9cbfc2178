FROM debian:12 AS builder
FROM builder AS builder2
FROM builder2
