FROM debian:12
CMD ["a"]
FROM debian:12
CMD ["b"]
