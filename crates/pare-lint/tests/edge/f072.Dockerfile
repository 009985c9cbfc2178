FROM debian:12
ENTRYPOINT ["a"]
CMD b
