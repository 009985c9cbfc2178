FROM alpine:3
RUN apk add -U curl=1
