FROM debian:12
RUN pip download flask
