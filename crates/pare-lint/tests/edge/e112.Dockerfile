FROM debian:12
RUN ln -s /bin/bash /bin/sh
