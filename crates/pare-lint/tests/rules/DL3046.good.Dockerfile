FROM debian:12
RUN useradd -l -u 123456789 bob
RUN useradd -u 1000 bob
