FROM debian:12
CMD ["a"]
ONBUILD CMD ["b"]
CMD ["c"]
