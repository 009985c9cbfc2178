FROM debian:12
ONBUILD FROM debian:12
