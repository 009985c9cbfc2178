#!/bin/sh
# Initialise an empty data directory (a fresh volume), then run the server in the foreground.
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initdb --auth=trust --username=postgres --encoding=UTF8 --no-sync -D "$PGDATA" >/dev/null
    echo "host all all 0.0.0.0/0 trust" >> "$PGDATA/pg_hba.conf"
    if [ -n "$POSTGRES_DB" ]; then
        postgres --single -D "$PGDATA" postgres <<SQL >/dev/null
CREATE DATABASE "$POSTGRES_DB";
SQL
    fi
fi
exec "$@"
