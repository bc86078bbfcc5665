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
//! [`WireVariant`] selects what this node writes; the reader accepts both.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tls` | no | `TlsConfig` and `RemoteConfig::with_tls`: the server and the connections a node dials use TLS (rustls with the ring provider, through tonic) |
//! | `build` | no | `compile_protos` and `configure` in [`build`], for a user's `build.rs` whose `.proto` files import `actor.proto` (protox, no system `protoc`) |
//! | `tracing-otel` | no | enables `protoactor/tracing-otel`: span context crosses nodes in message headers |
//!
//! How the crate is built inside (its modules, bottom up) is described in the repository's
//! `docs/architecture.md`.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod activator;
pub mod build;
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
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use config::TlsConfig;
pub use config::{RemoteConfig, WireVariant};
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

#[cfg(test)]
mod layering {
    /// The modules bottom to top (see the crate docs), with their source.
    const LAYERS: &[(&str, &str)] = &[
        ("pid", include_str!("pid.rs")),
        ("system_messages", include_str!("system_messages.rs")),
        ("serializer", include_str!("serializer.rs")),
        ("codec", include_str!("codec.rs")),
        ("frame", include_str!("frame.rs")),
        ("events", include_str!("events.rs")),
        ("config", include_str!("config.rs")),
        ("node", include_str!("node.rs")),
        ("endpoint", include_str!("endpoint.rs")),
        ("server", include_str!("server.rs")),
        ("activator", include_str!("activator.rs")),
        ("remote", include_str!("remote.rs")),
    ];

    /// The modules `src` names as `crate::<module>`.
    fn named(src: &str) -> Vec<&str> {
        src.match_indices("crate::")
            .map(|(i, _)| {
                let rest = &src[i + "crate::".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect()
    }

    #[test]
    fn modules_name_only_lower_layers() {
        for (i, (module, src)) in LAYERS.iter().enumerate() {
            for higher in named(src) {
                if let Some(j) = LAYERS.iter().position(|(m, _)| *m == higher) {
                    assert!(j <= i, "{module} names {higher}, a higher layer");
                }
            }
        }
        assert_eq!(
            named("use crate::remote_proto; crate::codec::X"),
            ["remote_proto", "codec"]
        );
    }
}
