FROM alpine:3
RUN apk --no-cache add curl=1
