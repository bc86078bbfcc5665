#!/usr/bin/env bash
# Checks the layering of the core crate (crates/protoactor): a module may name (`crate::x`)
# only modules of its own layer or of lower layers. The layers are the table in the crate
# docs of crates/protoactor/src/lib.rs (lines `//!  <n> <name>  <module>, <module>, ...`), so the
# documentation and the check cannot drift apart. Test code (items under `#[cfg(test)]`
# or `#[cfg(all(test, ...))]`) is exempt: it may build a whole system.
# Usage: scripts/check-layers.sh [path/to/crates/protoactor/src]   (exit 1 on a violation)
set -euo pipefail

if [ "${1:-}" = "--self-test" ]; then
  # The check must pass a layered tree and fail an upward name, a hidden module and a
  # module missing from the table.
  t="$(mktemp -d)"; trap 'rm -rf "$t"' EXIT
  printf '//  0 data       low\n//  1 top        high (notes)\n' > "$t/lib.rs"
  printf 'use crate::low::X;\n#[cfg(test)]\nmod tests {\n    use crate::high::Y;\n}\n' > "$t/low.rs"
  printf 'use crate::low::X;\n' > "$t/high.rs"
  "$0" "$t" >/dev/null || { echo "self-test: a layered tree was rejected"; exit 1; }
  for bad in 'use crate::high::Y;' 'use crate::Y;' 'use crate::nowhere::Y;'; do
    printf '%s\n' "$bad" > "$t/low.rs"
    if "$0" "$t" >/dev/null; then echo "self-test: accepted \`$bad\` in a lower layer"; exit 1; fi
  done
  echo "check-layers self-test: ok"; exit 0
fi

src="${1:-$(dirname "$0")/../crates/protoactor/src}"
lib="$src/lib.rs"
[ -f "$lib" ] || { echo "check-layers: no $lib" >&2; exit 2; }

awk -v src="$src" '
# The layer table: "//!  3 mailbox    mailbox" -> the module list is the comma-separated
# identifiers after the layer name, up to the first "(" if any.
FNR == NR {
    if (match($0, /^\/\/!?  +[0-9]+ +[a-z]+ +/)) {
        n = $2
        rest = substr($0, RLENGTH + 1)
        sub(/\(.*/, "", rest)
        count = split(rest, mods, /[ ,]+/)
        for (i = 1; i <= count; i++) if (mods[i] != "") { layer[mods[i]] = n; modules++ }
    }
    next
}
FNR == 1 {
    file = FILENAME
    rel = substr(file, length(src) + 2)
    mod = rel; sub(/\/.*/, "", mod); sub(/\.rs$/, "", mod)
    skipping = 0; depth = 0; pending = 0
    if (mod == "lib") { nextfile }
    if (!(mod in layer)) {
        printf "%s: module `%s` is in no layer of the table in lib.rs\n", rel, mod
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
        line = substr(line, RSTART + RLENGTH)
        if (name ~ /^\{/) {
            printf "%s:%d: grouped `crate::{...}` import: name one module per `use crate::`\n", rel, FNR
            bad = 1; continue
        }
        if (name ~ /^[A-Z]/) {
            printf "%s:%d: `crate::%s` hides its module; use `crate::<module>::%s`\n", rel, FNR, name, name
            bad = 1; continue
        }
        if (!(name in layer)) {
            printf "%s:%d: `crate::%s` is in no layer of the table in lib.rs\n", rel, FNR, name
            bad = 1; continue
        }
        if (layer[name] > layer[mod]) {
            printf "%s:%d: `%s` (layer %s) names `%s` (layer %s): a lower layer must not name a higher one\n", rel, FNR, mod, layer[mod], name, layer[name]
            bad = 1
        }
    }
}
END {
    if (modules == 0) { print "check-layers: no layer table found in lib.rs"; exit 2 }
    if (bad) exit 1
    print "check-layers: ok"
}
' "$lib" $(find "$src" -name '*.rs' | sort)
