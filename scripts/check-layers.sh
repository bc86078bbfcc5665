#!/usr/bin/env bash
# Checks the layering of every crate of the workspace (crates/*/src, examples/*/src): a
# module may name (`crate::x`) only modules of its own layer or of lower layers, and the
# modules never name each other in a cycle (not even inside one layer), so each crate reads
# from the bottom up.
# A crate's layers are the table in its crate docs (src/lib.rs, or src/main.rs for a binary;
# lines `//!  <n> <name>  <module>, <module>, ...`), so the documentation and the check
# cannot drift apart. A directory module (`gossip/*.rs`) counts as its top module (`gossip`).
# Test code (items under `#[cfg(test)]` or `#[cfg(all(test, ...))]`) is exempt: it may
# build a whole system; so are `$crate::` paths (a macro's expansion at its caller). A crate
# whose root is its only file needs no table. A cycle is printed as `a -> b -> a` with where
# each name is.
# Usage: scripts/check-layers.sh [<crate>/src ...]   (no argument: every crate;
#        exit 1 on a violation in any of them)
#        scripts/check-layers.sh --self-test
set -euo pipefail

if [ "${1:-}" = "--self-test" ]; then
  # The check must pass a layered tree without cycles (names inside a layer and from test
  # code allowed) and fail an upward name, a hidden module, a module missing from the
  # table and a cycle inside a layer; read a binary's table from main.rs, count a directory
  # module's files as that module, ignore `$crate::`, pass a crate of one file, and fail a
  # run of several crates when one of them fails.
  t="$(mktemp -d)"; trap 'rm -rf "$t"' EXIT
  mkdir -p "$t/a" "$t/b/net" "$t/c"
  printf '//  0 data       low, mid, side\n//  1 top        high (notes)\n' > "$t/a/lib.rs"
  printf 'use crate::low::X;\n#[cfg(test)]\nmod tests {\n    use crate::high::Y;\n}\n' > "$t/a/low.rs"
  printf 'use crate::low::X;\n#[cfg(test)]\nfn t() { crate::side::f() }\n' > "$t/a/mid.rs"
  printf 'use crate::mid::X;\n' > "$t/a/side.rs"
  printf 'use crate::low::X;\n' > "$t/a/high.rs"
  "$0" "$t/a" >/dev/null || { echo "self-test: a layered tree was rejected"; exit 1; }
  printf '//!  0 base       base\n//!  1 net        net\n//!  2 app        app\n' > "$t/b/main.rs"
  printf 'macro_rules! m { () => { $crate::app::run() } }\n' > "$t/b/base.rs"
  printf 'pub mod wire;\nuse crate::base::X;\n' > "$t/b/net/mod.rs"
  printf 'use crate::base::Y;\nuse crate::net::Z;\n' > "$t/b/net/wire.rs"
  printf 'use crate::net::wire::W;\n' > "$t/b/app.rs"
  printf '//! One file: nothing to layer.\npub fn f() {}\n' > "$t/c/lib.rs"
  "$0" "$t/a" "$t/b" "$t/c" >/dev/null || { echo "self-test: three layered crates were rejected"; exit 1; }
  printf 'use crate::app::Y;\n' >> "$t/b/net/wire.rs"
  if "$0" "$t/b" >/dev/null; then echo "self-test: accepted an upward name in net/wire.rs"; exit 1; fi
  for bad in 'use crate::high::Y;' 'use crate::Y;' 'use crate::nowhere::Y;' 'use crate::side::Y;'; do
    printf '%s\n' "$bad" > "$t/a/low.rs"
    if "$0" "$t/a" >/dev/null; then echo "self-test: accepted \`$bad\` in a lower layer"; exit 1; fi
  done
  if "$0" "$t/c" "$t/a" >/dev/null; then echo "self-test: a failing crate among others passed"; exit 1; fi
  # low -> side -> mid -> low: the cycle is reported with each step
  out="$("$0" "$t/a" || true)"
  case "$out" in
    *"import cycle: low -> side -> mid -> low"*) ;;
    *) echo "self-test: the cycle low -> side -> mid -> low was not reported: $out"; exit 1 ;;
  esac
  echo "check-layers self-test: ok"; exit 0
fi

# One crate: its table from src/lib.rs (or src/main.rs), then every module file.
check_crate() {
  local src="${1%/}" root
  if [ -f "$src/lib.rs" ]; then root="$src/lib.rs"
  elif [ -f "$src/main.rs" ]; then root="$src/main.rs"
  else echo "check-layers: no lib.rs or main.rs in $src" >&2; return 2
  fi
  awk -v src="$src" '
# The layer table: "//!  3 mailbox    mailbox" -> the module list is the comma-separated
# identifiers after the layer name, up to the first "(" if any.
FNR == NR {
    if (match($0, /^\/\/!?  +[0-9]+ +[a-z]+ +/)) {
        n = $2
        rest = substr($0, RLENGTH + 1)
        sub(/\(.*/, "", rest)
        count = split(rest, mods, /[ ,]+/)
        for (i = 1; i <= count; i++) if (mods[i] != "") {
            layer[mods[i]] = n; order[++modules] = mods[i]
        }
    }
    next
}
FNR == 1 {
    file = FILENAME
    rel = substr(file, length(src) + 2)
    mod = rel; sub(/\/.*/, "", mod); sub(/\.rs$/, "", mod)
    skipping = 0; depth = 0; pending = 0
    # the crate roots (the table is read from one) and src/bin/ (other crates) are no module
    if (rel == "lib.rs" || rel == "main.rs" || rel ~ /^bin\//) { nextfile }
    files++
    rel = src "/" rel                             # where, in messages
    if (!(mod in layer)) {
        printf "%s: module `%s` is in no layer of the layer table\n", rel, mod
        bad = 1; nextfile
    }
}
{
    line = $0
    # test-only items are exempt: skip from #[cfg(test...)] to the end of the item
    if (!skipping && line ~ /^[ \t]*#\[cfg\((all\()?test/) { pending = 1; next }
    if (pending) {
        if (line ~ /;[ \t]*$/ && line !~ /\{/) { pending = 0; next }   # a one-line item
        if (line ~ /\{/) { pending = 0; skipping = 1; depth = 0 }
        else next
    }
    if (skipping) {
        depth += gsub(/\{/, "{", line) - gsub(/\}/, "}", line)
        if (depth <= 0) skipping = 0
        next
    }
    sub(/\/\/.*/, "", line)                       # comments and doc comments
    while (match(line, /crate::[A-Za-z_{]+/)) {
        name = substr(line, RSTART + 7, RLENGTH - 7)
        dollar = RSTART > 1 && substr(line, RSTART - 1, 1) == "$"
        line = substr(line, RSTART + RLENGTH)
        if (dollar) continue                      # $crate:: expands at the macro caller
        if (name ~ /^\{/) {
            printf "%s:%d: grouped `crate::{...}` import: name one module per `use crate::`\n", rel, FNR
            bad = 1; continue
        }
        if (name ~ /^[A-Z]/) {
            printf "%s:%d: `crate::%s` hides its module; use `crate::<module>::%s`\n", rel, FNR, name, name
            bad = 1; continue
        }
        if (!(name in layer)) {
            printf "%s:%d: `crate::%s` is in no layer of the layer table\n", rel, FNR, name
            bad = 1; continue
        }
        if (name != mod && !((mod, name) in edge)) {
            edge[mod, name] = rel ":" FNR
            adj[mod] = adj[mod] " " name
        }
        if (layer[name] > layer[mod]) {
            printf "%s:%d: `%s` (layer %s) names `%s` (layer %s): a lower layer must not name a higher one\n", rel, FNR, mod, layer[mod], name, layer[name]
            bad = 1
        }
    }
}
# Tarjan: the strongly connected components of the module graph; one with two or more
# modules holds an import cycle.
function connect(v,   i, n, next_, w) {
    ix[v] = low[v] = ++visited
    stack[++sp] = v; onstack[v] = 1
    n = split(adj[v], next_, " ")
    for (i = 1; i <= n; i++) {
        w = next_[i]
        if (!(w in ix)) { connect(w); if (low[w] < low[v]) low[v] = low[w] }
        else if (onstack[w] && ix[w] < low[v]) low[v] = ix[w]
    }
    if (low[v] == ix[v]) {
        components++
        do { w = stack[sp--]; onstack[w] = 0; comp[w] = components; size[components]++ } while (w != v)
    }
}
# The shortest cycle through v inside its component (breadth first), as "v -> ... -> v"
# followed by where each step is named.
function cycle_through(v,   q, head, tail, from, u, i, n, next_, w, path, where, hop) {
    q[tail = 1] = v; head = 0
    while (head < tail) {
        u = q[++head]
        n = split(adj[u], next_, " ")
        for (i = 1; i <= n; i++) {
            w = next_[i]
            if (comp[w] != comp[v]) continue
            if (w == v) {
                path = v; where = ""
                for (hop = u; ; hop = from[hop]) {
                    path = hop " -> " path
                    where = "\n    " hop " -> " (hop == u ? v : nextstep[hop]) " at " edge[hop, (hop == u ? v : nextstep[hop])] where
                    if (hop == v) break
                    nextstep[from[hop]] = hop
                }
                return path where
            }
            if (!(w in from) && w != v) { from[w] = u; q[++tail] = w }
        }
    }
}
END {
    if (modules == 0 && files == 0) { print "check-layers: " src ": ok (one file)"; exit 0 }
    if (modules == 0) { print "check-layers: " src ": no layer table found in its lib.rs or main.rs"; exit 2 }
    for (i = 1; i <= modules; i++) if (!(order[i] in ix)) connect(order[i])
    for (i = 1; i <= modules; i++) {
        c = comp[order[i]]
        if (size[c] > 1 && !(c in reported)) {
            reported[c] = 1; bad = 1; members = ""
            for (j = 1; j <= modules; j++) if (comp[order[j]] == c) members = members ", " order[j]
            printf "import cycle: %s\n    (all the modules of this cycle: %s)\n", cycle_through(order[i]), substr(members, 3)
        }
    }
    if (bad) exit 1
    print "check-layers: " src ": ok"
}
' "$root" $(find "$src" -name '*.rs' | sort)
}

# No argument: every crate of the workspace (its members are crates/* and examples/*).
if [ $# -eq 0 ]; then cd "$(dirname "$0")/.."; shopt -s nullglob; set -- crates/*/src examples/*/src; fi
status=0
for src in "$@"; do
  check_crate "$src" || { rc=$?; [ "$rc" -gt "$status" ] && status=$rc; }
done
exit "$status"
