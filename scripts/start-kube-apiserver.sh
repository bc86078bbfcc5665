#!/usr/bin/env bash
# Builds (once, cached) and starts a real kube-apiserver of Kubernetes v1.37.2 on loopback,
# with its own etcd (Debian's etcd-server, through scripts/start-etcd.sh), for the Kubernetes
# provider tests. Prints what a client needs, as shell assignments:
#   eval "$(scripts/start-kube-apiserver.sh)"
#   # PROTOACTOR_KUBE_URL=https://127.0.0.1:<port>  PROTOACTOR_KUBE_TOKEN=<admin token>
#   # PROTOACTOR_KUBE_CA=<CA certificate file>       PROTOACTOR_KUBE_DIR=<state directory>
#
#   scripts/start-kube-apiserver.sh build           only build; prints the binary's path
#   scripts/start-kube-apiserver.sh stop            stops the API server and its etcd
#   scripts/start-kube-apiserver.sh stop-apiserver  stops the API server only (etcd keeps the
#                                                   data: starting again is a restart)
#
# No kubelet, scheduler or controller manager runs: pods are API objects that their users
# create and whose status they set. Authorization is RBAC: the admin token's user is in
# system:masters; other tokens come from the TokenRequest API (service accounts).
#
# The build: k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces the k8s.io
# staging modules with directories), so scripts/kube-apiserver/ is a module that requires it
# and points each staging module at its published v0.37.2. The binary is cached as
# $CARGO_TARGET_DIR/kube-apiserver/kube-apiserver-v1.37.2 (default target/); Go's build cache
# ($GOCACHE) makes a rebuild on the same machine quick.
#
# PROTOACTOR_KUBE_PORT (secure port, default 56443), PROTOACTOR_KUBE_ETCD_PORT (etcd client
# port, default the secure port + 1; its peer port is the next one) and PROTOACTOR_KUBE_DIR
# (default $TMPDIR/protoactor-kube-<port>) choose another instance. PROTOACTOR_KUBE_BIN uses
# a binary built elsewhere.
set -euo pipefail

VERSION=v1.37.2
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${PROTOACTOR_KUBE_PORT:-56443}"
ETCD_PORT="${PROTOACTOR_KUBE_ETCD_PORT:-$((PORT + 1))}"
DIR="${PROTOACTOR_KUBE_DIR:-${TMPDIR:-/tmp}/protoactor-kube-$PORT}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${PROTOACTOR_KUBE_BIN:-$TARGET/kube-apiserver/kube-apiserver-$VERSION}"
PIDFILE="$DIR/kube-apiserver.pid"
URL="https://127.0.0.1:$PORT"

log() { echo "start-kube-apiserver: $*" >&2; }

build() {
  if [ -x "$BIN" ]; then return 0; fi
  command -v go >/dev/null || { log "no go tool on PATH (needed to build kube-apiserver)"; exit 1; }
  mkdir -p "$(dirname "$BIN")"
  log "building kube-apiserver $VERSION (several minutes the first time) ..."
  local start=$SECONDS
  # The version variables make /version answer v1.37.2 rather than v0.0.0-master.
  (cd "$ROOT/scripts/kube-apiserver" && go build -trimpath \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37" \
    -o "$BIN.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$BIN.tmp" "$BIN"
  log "built $BIN in $((SECONDS - start)) s"
}

running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

stop_apiserver() {
  if running; then
    local pid
    pid="$(cat "$PIDFILE")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
}

etcd() {
  PROTOACTOR_ETCD_PORT="$ETCD_PORT" PROTOACTOR_ETCD_DIR="$DIR/etcd" bash "$ROOT/scripts/start-etcd.sh" "$@"
}

case "${1:-}" in
  build)
    build
    echo "$BIN"
    exit 0
    ;;
  stop)
    stop_apiserver
    etcd stop
    exit 0
    ;;
  stop-apiserver)
    stop_apiserver
    exit 0
    ;;
  "") ;;
  *)
    log "unknown argument $1 (build, stop, stop-apiserver, or none to start)"
    exit 2
    ;;
esac

build
mkdir -p "$DIR"
ETCD_URL="$(etcd)"

# Keys and certificates, once per directory: a CA, the serving certificate for 127.0.0.1
# and localhost, the service account signing key, and the admin token.
if [ ! -f "$DIR/tokens.csv" ]; then
  (
    cd "$DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=protoactor-test-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out server.crt -days 3650 -extfile server.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    token="$(openssl rand -hex 24)"
    printf '%s,protoactor-admin,protoactor-admin,system:masters\n' "$token" >tokens.csv.tmp
    mv tokens.csv.tmp tokens.csv
  )
fi
TOKEN="$(cut -d, -f1 "$DIR/tokens.csv")"

ready() {
  [ "$(curl -s --max-time 2 --cacert "$DIR/ca.crt" -H "Authorization: Bearer $TOKEN" \
    "$URL/readyz" 2>/dev/null)" = "ok" ]
}

if ! running; then
  # Flags: no controllers run, so nothing would use priority and fairness or profiling; the
  # endpoint reconciler (the `kubernetes` Service's endpoints) refuses a loopback address.
  nohup "$BIN" \
    --etcd-servers="$ETCD_URL" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none \
    --secure-port="$PORT" \
    --tls-cert-file="$DIR/server.crt" \
    --tls-private-key-file="$DIR/server.key" \
    --token-auth-file="$DIR/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$DIR/sa.key" \
    --service-account-signing-key-file="$DIR/sa.key" \
    --service-cluster-ip-range=10.96.0.0/24 \
    --enable-priority-and-fairness=false \
    --profiling=false \
    --cert-dir="$DIR/certs" \
    >"$DIR/kube-apiserver.log" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
fi

# Ready: /readyz answers "ok" once storage, RBAC bootstrap and the default namespace are up.
for _ in $(seq 1 1200); do
  if ready; then
    printf 'export PROTOACTOR_KUBE_URL=%s\n' "$URL"
    printf 'export PROTOACTOR_KUBE_TOKEN=%s\n' "$TOKEN"
    printf 'export PROTOACTOR_KUBE_CA=%s\n' "$DIR/ca.crt"
    printf 'export PROTOACTOR_KUBE_DIR=%s\n' "$DIR"
    exit 0
  fi
  if ! running; then
    log "kube-apiserver exited; its log ends with:"
    tail -n 30 "$DIR/kube-apiserver.log" >&2 || true
    exit 1
  fi
  sleep 0.1
done
log "kube-apiserver on $URL not ready after 120 s; its log ends with:"
tail -n 30 "$DIR/kube-apiserver.log" >&2 || true
exit 1
