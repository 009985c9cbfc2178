FROM debian:12
RUN --network=none echo a
RUN --network=none echo b
