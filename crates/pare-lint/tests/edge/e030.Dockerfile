FROM alpine:3
RUN apk add --no-cache --virtual .build-deps gcc
