FROM debian:12 AS base
FROM base
FROM scratch
FROM $IMG
