FROM debian:12
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
FROM debian:12
RUN a | b
