FROM debian:12
RUN pip install --upgrade pip==23.0 setuptools
