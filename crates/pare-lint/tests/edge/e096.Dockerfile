FROM debian:12
RUN go install github.com/x/y@v1 github.com/z/w
