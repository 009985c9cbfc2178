FROM alpine:3
RUN apk add --no-cache x=1 y
