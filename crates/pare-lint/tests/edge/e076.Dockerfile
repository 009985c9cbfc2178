FROM debian:12
RUN set -o pipefail && curl x | sh
