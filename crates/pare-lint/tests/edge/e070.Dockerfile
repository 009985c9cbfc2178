FROM --platform=linux/${TARGETARCH} golang:1.22 AS build
