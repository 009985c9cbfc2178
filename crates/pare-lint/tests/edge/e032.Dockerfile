FROM alpine:3
RUN apk update && apk add curl=1 && rm -rf /var/cache/apk/*
