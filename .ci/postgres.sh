#!/usr/bin/env bash
# A throwaway PostgreSQL server for the shared-tuning tests (.ci/run, tox -e postgres).
#   bash .ci/postgres.sh start   # prints the URL of an empty database "ploutos"
#   bash .ci/postgres.sh stop    # stops the server and deletes its files
# Uses Debian's postgresql package (installed here when missing and apt can reach it).
set -euo pipefail
DIR=${PLOUTOS_PG_DIR:-/tmp/ploutos-postgres}
PORT=${PLOUTOS_PG_PORT:-54329}

server_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
as_owner() {  # initdb and the server refuse to run as root
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
    bin=$(server_bin)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            timeout 300 apt-get install -y -q postgresql >/dev/null 2>&1 || true
        fi
        bin=$(server_bin)
    fi
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "no PostgreSQL server binaries (Debian package postgresql)" >&2
        exit 3
    fi
    rm -rf "$DIR" && mkdir -p "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres "$DIR"
    as_owner "$bin/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
    as_owner "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
        -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=50" start >/dev/null
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$PORT" -U postgres ploutos
    echo "postgresql://postgres@127.0.0.1:$PORT/ploutos"
    ;;
stop)
    bin=$(server_bin)
    if [ -n "$bin" ] && [ -d "$DIR/data" ]; then
        as_owner "$bin/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$DIR"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
