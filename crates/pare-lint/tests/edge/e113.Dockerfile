FROM debian:12
RUN ln -sf /bin/sh /bin/bash
