FROM debian:12
LABEL a=1 \
  "b c"=2
