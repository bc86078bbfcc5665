//! # The protoactor-rs guide
//!
//! protoactor-rs is Proto.Actor for Rust: actors with Proto.Actor's small API (`Props`,
//! `Pid`, `Context`, `spawn`, `send`, `request`), protoactor-go's semantics, and remoting,
//! clustering and persistence that join protoactor-go systems over gRPC and protobuf.
//!
//! Read the chapters in order; each one is short, every code block in it is compiled and run
//! by `cargo test -p protoactor-guide`, and each says how protoactor-go spells the same
//! thing, for readers who know Go's version.
//!
//! 1. [`getting_started`]: the crates, a first actor, running it.
//! 2. [`actors_and_messages`]: actors, messages, `send`/`request`/`respond`, behaviors.
//! 3. [`props_and_mailboxes`]: what `Props` configure: mailboxes, dispatchers, names.
//! 4. [`supervision`]: failures, strategies, directives, supervisor events.
//! 5. [`middleware`]: receiver, sender and spawn middleware, context decorators.
//! 6. [`futures_and_reenter_after`]: request futures, `pipe_to`, `reenter_after`.
//! 7. [`remoting_with_go`]: two nodes over gRPC, message types, talking to protoactor-go.
//! 8. [`cluster_and_typed_grains`]: virtual actors, providers, typed grains from `.proto`.
//! 9. [`persistence`]: event sourcing and snapshots.
//! 10. [`persistent_grains`]: typed grains whose state is event-sourced: recovery,
//!     `persist`, snapshot policies, a provider per kind, fencing, failed starts.
//! 11. [`pub_sub`]: topics, publishers, PID and grain subscribers, durable subscriptions,
//!     acknowledged publish, mixing with Go.
//! 12. [`observability`]: logs through `tracing`, metrics, OpenTelemetry traces.
//! 13. [`operations`]: shutdown, dead letters, mutual TLS between members, settings that matter in production.
//! 14. [`management_api`]: logs, named errors, metrics, the management API and dashboard.
//!
//! The API reference is the documentation of each crate: `protoactor`, `protoactor-remote`,
//! `protoactor-cluster`, `protoactor-cluster-build`, `protoactor-persistence`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The types generated from `proto/hello.proto` by this crate's `build.rs` with
/// `protoactor-cluster-build` (used by the [`cluster_and_typed_grains`] chapter).
pub mod hello {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/hello.rs"));
}

/// The types generated from `proto/counter.proto` by this crate's `build.rs`, `Counter` also
/// as a persistent grain (used by the [`persistent_grains`] chapter).
pub mod counter {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/counter.rs"));
}

pub mod getting_started {
    #![doc = include_str!("chapters/01-getting-started.md")]
}
pub mod actors_and_messages {
    #![doc = include_str!("chapters/02-actors-and-messages.md")]
}
pub mod props_and_mailboxes {
    #![doc = include_str!("chapters/03-props-and-mailboxes.md")]
}
pub mod supervision {
    #![doc = include_str!("chapters/04-supervision.md")]
}
pub mod middleware {
    #![doc = include_str!("chapters/05-middleware.md")]
}
pub mod futures_and_reenter_after {
    #![doc = include_str!("chapters/06-futures-and-reenter-after.md")]
}
pub mod remoting_with_go {
    #![doc = include_str!("chapters/07-remoting-with-go.md")]
}
pub mod cluster_and_typed_grains {
    #![doc = include_str!("chapters/08-cluster-and-typed-grains.md")]
}
pub mod persistence {
    #![doc = include_str!("chapters/09-persistence.md")]
}
pub mod observability {
    #![doc = include_str!("chapters/10-observability.md")]
}
pub mod operations {
    #![doc = include_str!("chapters/11-operations.md")]
}
pub mod pub_sub {
    #![doc = include_str!("chapters/pub-sub.md")]
}
pub mod persistent_grains {
    #![doc = include_str!("chapters/09a-persistent-grains.md")]
}
pub mod management_api {
    #![doc = include_str!("chapters/management-api.md")]
}
