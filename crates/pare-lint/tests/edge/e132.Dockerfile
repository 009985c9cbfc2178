FROM debian:12
RUN echo a
# comment
RUN echo b
