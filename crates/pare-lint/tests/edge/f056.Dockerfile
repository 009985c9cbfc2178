FROM alpine:3
RUN apk add --no-cache --update x=1
