FROM debian:12
RUN set -euxo pipefail; curl x | sh
