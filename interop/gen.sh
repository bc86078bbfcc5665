#!/usr/bin/env bash
# Regenerates messages/messages.pb.go from the Rust crate's proto/messages.proto and
# clustertest/clustertest.pb.go from proto/clustertest.proto.
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-go v1.33.0, the version of
# google.golang.org/protobuf that protoactor-go (2024) uses:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.33.0
# The generated files are committed, so building and testing need neither.
set -euo pipefail
cd "$(dirname "$0")"
PATH="$(go env GOPATH)/bin:$PATH"
protoc -I ../crates/protoactor-remote/proto \
  --go_out=. \
  --go_opt=module=protoactor-rs/interop \
  --go_opt=Mmessages.proto=protoactor-rs/interop/messages \
  --go_opt=Mactor.proto=github.com/asynkron/protoactor-go/actor \
  ../crates/protoactor-remote/proto/messages.proto
protoc -I proto \
  --go_out=. \
  --go_opt=module=protoactor-rs/interop \
  proto/clustertest.proto
gofmt -l messages clustertest || true
