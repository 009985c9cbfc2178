FROM golang:1.22
RUN go install example.com/tool@v1.2.3
RUN go install ./cmd/x
