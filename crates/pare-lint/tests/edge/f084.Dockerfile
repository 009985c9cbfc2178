FROM debian:12 AS base
FROM base:latest
