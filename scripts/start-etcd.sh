#!/usr/bin/env bash
# Starts (or reuses) a throwaway single-node etcd server on loopback for the cluster tests and
# prints its client endpoint on stdout:
#   export PROTOACTOR_ETCD_ENDPOINTS="$(scripts/start-etcd.sh)"
# `scripts/start-etcd.sh stop` stops it. Needs the `etcd-server` package (apt; etcd 3.4).
# PROTOACTOR_ETCD_PORT (client port, default 52379; the peer port is the next one) and
# PROTOACTOR_ETCD_DIR (default $TMPDIR/protoactor-etcd-<port>) choose another instance.
set -euo pipefail

PORT="${PROTOACTOR_ETCD_PORT:-52379}"
PEER_PORT=$((PORT + 1))
DIR="${PROTOACTOR_ETCD_DIR:-${TMPDIR:-/tmp}/protoactor-etcd-$PORT}"
PIDFILE="$DIR/etcd.pid"
ENDPOINT="http://127.0.0.1:$PORT"

BIN="$(command -v etcd || true)"
if [ -z "$BIN" ] && [ -x /usr/bin/etcd ]; then BIN=/usr/bin/etcd; fi
if [ -z "$BIN" ]; then
  echo "start-etcd: no etcd binary on PATH (apt-get install etcd-server)" >&2
  exit 1
fi

running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

healthy() {
  # /health answers {"health":"true"} once the member serves requests (bash's /dev/tcp: no
  # curl needed).
  local body
  body="$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT && printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && cat <&3" 2>/dev/null || true)"
  case "$body" in *'"health":"true"'*) return 0 ;; *) return 1 ;; esac
}

if [ "${1:-}" = "stop" ]; then
  if running; then
    pid="$(cat "$PIDFILE")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  exit 0
fi

mkdir -p "$DIR"
if ! running; then
  nohup "$BIN" \
    --name protoactor-test \
    --data-dir "$DIR/data" \
    --listen-client-urls "$ENDPOINT" \
    --advertise-client-urls "$ENDPOINT" \
    --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-cluster "protoactor-test=http://127.0.0.1:$PEER_PORT" \
    --log-outputs stderr \
    >"$DIR/etcd.log" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
fi

for _ in $(seq 1 300); do
  if healthy; then
    echo "$ENDPOINT"
    exit 0
  fi
  if ! running; then
    echo "start-etcd: etcd exited; its log ends with:" >&2
    tail -n 20 "$DIR/etcd.log" >&2 || true
    exit 1
  fi
  sleep 0.1
done
echo "start-etcd: etcd on $ENDPOINT not healthy after 30 s; its log ends with:" >&2
tail -n 20 "$DIR/etcd.log" >&2 || true
exit 1
