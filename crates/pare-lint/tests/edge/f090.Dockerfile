FROM debian:12
SHELL ["/bin/bash", "-eo", "pipefail", "-c"]
RUN a | b
