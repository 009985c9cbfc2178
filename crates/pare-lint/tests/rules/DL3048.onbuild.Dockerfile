FROM debian:12
ONBUILD LABEL "bad key"=x
