FROM debian:12
LABEL Com.Example=1
