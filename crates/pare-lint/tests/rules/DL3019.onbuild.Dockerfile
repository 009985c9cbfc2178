FROM alpine:3.19
ONBUILD RUN apk add curl=8.5.0-r0
