FROM debian:latest AS y
