#!/usr/bin/env bash
# Starts (or reuses) a throwaway PostgreSQL server on loopback for the persistence tests and
# prints its URL on stdout: `export PROTOACTOR_POSTGRES_URL="$(scripts/start-postgres.sh)"`.
# `scripts/start-postgres.sh stop` stops it. Needs the `postgresql` package (apt).
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user.
set -euo pipefail

PORT="${PROTOACTOR_PG_PORT:-55432}"
DIR="${PROTOACTOR_PG_DIR:-${TMPDIR:-/tmp}/protoactor-postgres}"
DATA="$DIR/data"

BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  echo "start-postgres: no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --home-dir "$DIR" --shell /usr/sbin/nologin postgres
fi

if [ "${1:-}" = "stop" ]; then
  if [ -f "$DATA/postmaster.pid" ]; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2
  fi
  exit 0
fi

mkdir -p "$DIR"
if [ "$(id -u)" = 0 ]; then chown postgres "$DIR"; fi

if [ ! -f "$DATA/PG_VERSION" ]; then
  as_owner "$BIN/initdb" -D "$DATA" -U protoactor --auth=trust -E UTF8 --no-sync >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; exit 1; }
fi

if ! as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1" start >&2 \
    || { cat "$DIR/server.log" >&2; exit 1; }
fi

# The database the tests use (ignore "already exists").
as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U protoactor -d postgres -qtAc \
  "SELECT 1 FROM pg_database WHERE datname = 'protoactor'" | grep -q 1 \
  || as_owner "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U protoactor protoactor

echo "postgres://protoactor@127.0.0.1:$PORT/protoactor"
