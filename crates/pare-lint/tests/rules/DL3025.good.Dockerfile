FROM debian:12
CMD ["node", "server.js"]
ENTRYPOINT ["/init"]
