FROM debian:12
RUN echo a \
  # comment
  && cd /x
