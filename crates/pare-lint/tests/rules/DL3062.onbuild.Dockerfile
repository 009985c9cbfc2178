FROM golang:1.22
ONBUILD RUN go install example.com/tool
