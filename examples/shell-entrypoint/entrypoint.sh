#!/bin/sh
# Prepare the document root from the environment, then exec the server.
set -eu
root=/srv/www
mkdir -p "$root"
cat > "$root/index.html" <<HTML
<!doctype html>
<html><body><h1>${GREETING}</h1><p><a href="/status.txt">status</a></p></body></html>
HTML
# The start time to the nanosecond: an answer that differs between any two containers, which
# pare must recognise as volatile instead of calling the slim image broken.
printf 'started=%s\nhost=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$(hostname)" > "$root/status.txt"
if [ "${1:-}" = "httpd" ]; then
    exec busybox httpd -f -v -p "${PORT}" -h "$root"
fi
exec "$@"
