FROM alpine:3
RUN apk add --no-cache -t .deps x=1 && apk del .deps
