FROM debian:12
RUN groupadd -g 123456789 g
