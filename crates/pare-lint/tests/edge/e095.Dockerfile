FROM debian:12
RUN go get github.com/x/y
