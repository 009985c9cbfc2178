FROM debian:12
RUN go install -ldflags=-s github.com/x/y@v1
