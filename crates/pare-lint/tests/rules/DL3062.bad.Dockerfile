FROM golang:1.22
RUN go install example.com/tool
