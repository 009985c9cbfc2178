FROM debian:12
RUN go mod download
