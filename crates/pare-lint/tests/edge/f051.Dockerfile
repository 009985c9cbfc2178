FROM debian:12
RUN go install .
