#!/usr/bin/env bash
# Checks that every workspace crate declares `rust-version` equal to the highest
# `rust-version` any package in Cargo.lock declares (the oldest toolchain that can build the
# locked dependency tree; no older toolchain is installed here to try). Reads `cargo metadata`
# (offline, locked). Prints the figure and each crate that disagrees; exit 1 on a mismatch.
# Usage: scripts/check-msrv.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Fetches the lock file's packages once (metadata reads each one's Cargo.toml).
cargo fetch --locked >/dev/null
cargo metadata --format-version 1 --locked --offline | python3 -c '
import json, sys

def key(v):
    return tuple(int(p) for p in v.split("."))

meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
deps = [p for p in meta["packages"] if p["id"] not in members and p.get("rust_version")]
if not deps:
    sys.exit("check-msrv: no dependency declares a rust-version")
top = max(deps, key=lambda p: key(p["rust_version"]))
need = top["rust_version"]
print("check-msrv: highest rust-version in Cargo.lock: %s (%s %s)" % (need, top["name"], top["version"]))
bad = 0
for p in meta["packages"]:
    if p["id"] not in members:
        continue
    have = p.get("rust_version")
    if have is None or key(have) != key(need):
        print("check-msrv: %s declares rust-version %s, the lock file needs %s" % (p["name"], have, need))
        bad = 1
sys.exit(bad)
'
echo "check-msrv: ok"
