FROM debian:12
SHELL ["/bin/zsh", "-o", "pipefail", "-c"]
RUN a | b
