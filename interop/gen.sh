#!/usr/bin/env bash
# Regenerates messages/messages.pb.go from the remote crate's shared/messages.proto,
# clustertest/clustertest.pb.go from proto/clustertest.proto, and grainstest/ (messages and
# protoc-gen-go-grain's typed grains) from the cluster crate's tests/protos/grainstest.proto,
# with the generator of the protoactor-go module pinned in go.mod.
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-go v1.33.0, the version of
# google.golang.org/protobuf that protoactor-go (2024) uses:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.33.0
# The generated files are committed, so building and testing need neither.
set -euo pipefail
cd "$(dirname "$0")"
PATH="$(go env GOPATH)/bin:$PATH"
protoc -I ../crates/protoactor-remote/proto -I ../crates/protoactor-remote/shared \
  --go_out=. \
  --go_opt=module=protoactor-rs/interop \
  --go_opt=Mmessages.proto=protoactor-rs/interop/messages \
  --go_opt=Mactor.proto=github.com/asynkron/protoactor-go/actor \
  ../crates/protoactor-remote/shared/messages.proto
protoc -I proto \
  --go_out=. \
  --go_opt=module=protoactor-rs/interop \
  proto/clustertest.proto
# protoc-gen-go-grain, built from the pinned protoactor-go module (its own import path for
# options.proto is relative to the module root).
GRAIN_PLUGIN="$(mktemp -d)/protoc-gen-go-grain"
go build -o "$GRAIN_PLUGIN" github.com/asynkron/protoactor-go/protobuf/protoc-gen-go-grain
PROTOACTOR_GO="$(go list -m -f '{{.Dir}}' github.com/asynkron/protoactor-go)"
protoc -I ../crates/protoactor-cluster/tests/protos -I "$PROTOACTOR_GO" \
  --plugin=protoc-gen-go-grain="$GRAIN_PLUGIN" \
  --go_out=. --go_opt=module=protoactor-rs/interop \
  --go-grain_out=. --go-grain_opt=module=protoactor-rs/interop \
  ../crates/protoactor-cluster/tests/protos/grainstest.proto
rm -rf "$(dirname "$GRAIN_PLUGIN")"
gofmt -l messages clustertest grainstest || true
