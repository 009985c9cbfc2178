FROM debian:12
RUN pip wheel flask
