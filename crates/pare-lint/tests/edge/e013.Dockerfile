FROM debian:12
RUN pip3 install --user flask==1.0
