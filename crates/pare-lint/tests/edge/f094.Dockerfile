FROM debian:12
RUN ln -s /usr/bin/python3 /usr/bin/python
