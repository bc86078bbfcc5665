//! # protoactor-remote
//!
//! Proto.Actor remoting for Rust: actors on different nodes talk over gRPC streams with
//! protobuf messages, byte-compatible with protoactor-go (and protoactor-dotnet).
//!
//! Start remoting on an [`ActorSystem`](protoactor::ActorSystem) with [`Remote::start`];
//! register the message types that cross the wire once with the [`Serialization`] registry;
//! then `ctx.send(&remote_pid, msg)` works with the same code as for a local PID. Remote
//! spawn goes through [`Remote::spawn_named`], remote watch through the usual
//! `ctx.watch(&remote_pid)`.
//!
//! ```
//! use std::time::Duration;
//! use protoactor::prelude::*;
//! use protoactor_remote::{Remote, RemoteConfig, Serialization};
//!
//! // The message types that cross the wire: usually generated from `.proto` files by a
//! // build script (see [`build`]); written out here.
//! #[derive(Clone, PartialEq, prost::Message)]
//! struct Greet {
//!     #[prost(string, tag = "1")]
//!     who: String,
//! }
//! impl prost::Name for Greet {
//!     const NAME: &'static str = "Greet";
//!     const PACKAGE: &'static str = "demo";
//! }
//!
//! // Registered once.
//! let types = Serialization::new();
//! types.register::<Greet>();
//!
//! // Two nodes on free loopback ports (one process here; normally two machines).
//! let a = ActorSystem::new();
//! let remote_a = Remote::start(&a, RemoteConfig::local().with_serialization(types.clone())).unwrap();
//! let b = ActorSystem::new();
//! let remote_b = Remote::start(&b, RemoteConfig::local().with_serialization(types)).unwrap();
//!
//! b.root()
//!     .spawn_named(
//!         &Props::from_func(|ctx| {
//!             if let Some(g) = ctx.message_as::<Greet>() {
//!                 let reply = Greet { who: format!("hello {}", g.who) };
//!                 ctx.respond(reply);
//!             }
//!         }),
//!         "greeter",
//!     )
//!     .unwrap();
//!
//! // Same code as for a local PID.
//! let greeter = Pid::new(remote_b.address(), "greeter");
//! let reply = a
//!     .root()
//!     .request_future(&greeter, Greet { who: "a".into() }, Duration::from_secs(10))
//!     .result_as::<Greet>()
//!     .unwrap();
//! assert_eq!(reply.who, "hello a");
//! remote_a.shutdown();
//! remote_b.shutdown();
//! ```
//!
//! Wire protocol variants: protoactor-go's published module (2024) writes
//! `MessageBatch.targets` as `actor.PID` messages, the current protocol as plain id strings.
//! The reader accepts both. What this node writes to a peer is the peer's own variant, which
//! a new endpoint learns with a probe that decodes in both before it sends anything else
//! (messages meanwhile are held); [`WireVariant`] is the fallback for a peer that does not
//! answer (see `docs/semantics.md`).
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tls` | no | `TlsConfig`, `RemoteConfig::with_tls` and `RemoteConfig::with_mutual_tls`: the server and the connections a node dials use TLS (rustls with the ring provider, through tonic); with mutual TLS the server accepts only peers presenting a certificate of the configured CA, and the node presents its own when it dials; peer address binding (`TlsConfig::with_peer_address_binding`); the `certs` module (signing with the TLS key, certificate checks) |
//! | `build` | no | `compile_protos` and `configure` in [`build`], for a user's `build.rs` whose `.proto` files import `actor.proto` (protox, no system `protoc`) |
//! | `tracing-otel` | no | enables `protoactor/tracing-otel`: span context crosses nodes in message headers |
//!
//! ## Mutual TLS
//!
//! By default, as in protoactor-go, anyone who reaches a node's port can send it anything.
//! With `RemoteConfig::with_mutual_tls(cert_pem, key_pem, ca_pem)` (feature `tls`) the
//! server requires a client certificate signed by `ca_pem` — a peer without one, or with one
//! of another CA, fails the TLS handshake and reaches nothing, while the node keeps serving —
//! and the node presents `cert_pem` when it dials peers, whose server certificates it checks
//! against `ca_pem` (for the host of their address, or `TlsConfig::domain_name`). Every
//! message between nodes is then on an authenticated connection. It authenticates the
//! *connection*, not the sender PID inside a message: any holder of a certificate of the CA
//! can still claim any sender, unless peer address binding is on
//! (`TlsConfig::with_peer_address_binding`, `Remote::bind_peer_addresses`; Rust-only
//! clusters): then a connection may claim only sender addresses whose host its client
//! certificate names, and other messages are refused (dead letters, delivery errors,
//! `Remote::refused_senders`). The `certs` module signs with the TLS key and checks
//! certificates for other layers (the cluster's member signatures). PEM data is checked by `Remote::start` (an error, never a
//! panic); `TlsConfig::from_pem_files` reads files, naming a missing one. protoactor-go
//! speaks it too, through `remote.WithServerOptions` / `remote.WithDialOptions` with gRPC TLS
//! credentials (`RequireAndVerifyClientCert`).
//!
//! How the crate is built inside is also described in the repository's
//! `docs/architecture.md`.
//!
//! # Layers
//!
//! The crate reads from the bottom up. A module names (`crate::module`) only modules of its
//! own layer or of lower ones, and no modules name each other in a cycle;
//! `scripts/check-layers.sh`, run by CI, reads this table and fails on a name of a higher
//! layer and on an import cycle.
//!
//! ```text
//!  0 wire       proto, actor_proto, remote_proto, messages, pid, build
//!                 the generated packages; `pid`: the one conversion between core `Pid`s
//!                 and wire `actor.PID`s (PidExt, WireContext); `build`: build-script helpers
//!  1 mapping    system_messages
//!                 the wire mapping of core messages in both directions (`Watch`, `Unwatch`,
//!                 `Stop`, `Terminated`; `PoisonPill`, `Touch`, `Touched`, `DeadLetterResponse`)
//!  2 registry   serializer
//!                 the registry of message types and their payload encodings
//!  3 batches    codec, frame
//!                 `MessageBatch`es (tables, both wire variants, per-envelope errors, the
//!                 type-name cap); the gRPC codec, with the memory budget checked per frame
//!  4 settings   events, config, certs
//!                 published events and settings; `certs` (feature `tls`): signing with the
//!                 TLS key, checking peers' certificates, peer address binding
//!  5 node       node
//!                 the node-wide state (system, settings, registry, address, inbound streams,
//!                 shutdown flag, learned peer variants, throttled delivery-error log)
//!  6 transport  endpoint, server
//!                 one writer per remote address, the remote process PIDs of other nodes
//!                 resolve to, remote watches; the gRPC service reading inbound streams
//!  7 top        activator, remote
//!                 remote spawn, and [`Remote`], which starts and stops it all
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod activator;
pub mod build;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod certs;
pub mod codec;
pub mod config;
mod endpoint;
pub mod events;
pub mod frame;
mod node;
mod pid;
mod remote;
pub mod serializer;
mod server;
mod system_messages;

pub use activator::ResponseStatusCode;
pub use config::{RemoteConfig, WireVariant};
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use config::{TlsConfig, TlsError};
pub use events::{EndpointConnected, EndpointTerminated, RemoteDeliveryError};
pub use pid::{PidExt, WireContext};
pub use remote::{Remote, RemoteError, RemoteSpawnError};
pub use serializer::{
    JsonMessage, Serialization, SerializationError, SerializerId, UndecodableMessage,
};

/// Generated protobuf types: packages `actor` and `remote` (with the gRPC service).
pub mod proto {
    /// Package `actor` (`actor.PID`, `actor.Watch`, ...).
    pub mod actor {
        #![allow(missing_docs, clippy::all)]
        include!(concat!(env!("OUT_DIR"), "/actor.rs"));
    }
    /// Package `remote` and the `remote.Remoting` service.
    pub mod remote {
        #![allow(missing_docs, clippy::all)]
        include!(concat!(env!("OUT_DIR"), "/remote.rs"));
    }
    /// Package `messages` of the examples and tests (they include `shared/messages.rs`).
    #[cfg(test)]
    pub(crate) mod messages {
        #![allow(missing_docs, clippy::all, dead_code)]
        include!(concat!(env!("OUT_DIR"), "/messages.rs"));
    }
}

pub use proto::actor as actor_proto;
#[cfg(test)]
pub(crate) use proto::messages;
pub use proto::remote as remote_proto;

pub use actor_proto::Pid as ProtoPid;
