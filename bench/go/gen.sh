#!/usr/bin/env bash
# Regenerates messages/bench.pb.go from ../proto/bench.proto. The output is committed, so
# building the benchmark needs no protoc; run this only after changing the .proto.
# Needs: protoc (apt-get install protobuf-compiler) and
#   GOBIN=/tmp/gobin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.33.0
set -euo pipefail
cd "$(dirname "$0")"
PATH="${GOBIN:-/tmp/gobin}:$PATH" protoc -I ../proto --go_out=messages --go_opt=paths=source_relative ../proto/bench.proto
