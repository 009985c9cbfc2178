FROM debian:12
RUN apt-get update -qq && apt-get install -qq curl=1 --no-install-recommends
