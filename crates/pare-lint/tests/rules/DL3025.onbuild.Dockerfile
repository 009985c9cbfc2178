FROM debian:12
ONBUILD CMD node server.js
