FROM debian:12
LABEL "bad key"=x
