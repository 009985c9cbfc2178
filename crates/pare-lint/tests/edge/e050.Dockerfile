FROM debian:12
LABEL 1abc=x
