FROM debian:12
RUN --bogus=x echo
