FROM debian:12
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
RUN curl x | sh
