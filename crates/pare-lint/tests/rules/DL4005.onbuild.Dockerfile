FROM debian:12
ONBUILD RUN ln -sf /bin/bash /bin/sh
