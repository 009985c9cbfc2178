#!/bin/sh
# Initialise $PGDATA on first start, then run the server in the foreground.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pw="$(mktemp)"
    echo example >"$pw"
    initdb --pgdata="$PGDATA" --username=postgres --pwfile="$pw" \
        --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pw"
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
fi
exec "$@" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
