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
//! use protoactor_remote::messages::{Echo, Response};
//! use protoactor_remote::{Remote, RemoteConfig, Serialization};
//!
//! // The message types that cross the wire, registered once.
//! let types = Serialization::new();
//! types.register::<Echo>();
//! types.register::<Response>();
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
//!             if let Some(e) = ctx.message_as::<Echo>() {
//!                 let reply = Response { some_value: e.message.clone(), ..Default::default() };
//!                 ctx.respond(reply);
//!             }
//!         }),
//!         "echo",
//!     )
//!     .unwrap();
//!
//! // Same code as for a local PID.
//! let echo = Pid::new(remote_b.address(), "echo");
//! let reply = a
//!     .root()
//!     .request_future(&echo, Echo { message: "hi".into(), sender: None }, Duration::from_secs(10))
//!     .result_as::<Response>()
//!     .unwrap();
//! assert_eq!(reply.some_value, "hi");
//! remote_a.shutdown();
//! remote_b.shutdown();
//! ```
//!
//! Wire protocol variants: protoactor-go's published module (2024) writes
//! `MessageBatch.targets` as `actor.PID` messages, the current protocol as plain id strings.
//! [`WireVariant`] selects what this node writes; the reader accepts both.

#![warn(missing_docs)]

mod activator;
pub mod codec;
pub mod config;
mod endpoint;
pub mod events;
mod remote;
pub mod serializer;
mod server;

pub use activator::ResponseStatusCode;
pub use config::{RemoteConfig, TlsConfig, WireVariant};
pub use events::{EndpointConnected, EndpointTerminated, RemoteDeliveryError};
pub use remote::{Remote, RemoteError, RemoteSpawnError};
pub use serializer::{
    JsonMessage, Serialization, SerializationError, SerializerId, UndecodableMessage,
};

/// Generated protobuf types: packages `actor`, `remote` (with the gRPC service) and
/// `messages` (the examples' and the interop suite's messages).
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
    /// Package `messages`, shared with the Go programs under `interop/`.
    pub mod messages {
        #![allow(missing_docs, clippy::all)]
        include!(concat!(env!("OUT_DIR"), "/messages.rs"));
    }
}

pub use proto::actor as actor_proto;
pub use proto::messages;
pub use proto::remote as remote_proto;

pub use actor_proto::Pid as ProtoPid;

/// Converts between core [`Pid`](protoactor::Pid)s and wire `actor.PID`s.
pub trait PidExt {
    /// The wire form of this PID.
    fn to_proto(&self) -> actor_proto::Pid;
}

impl PidExt for protoactor::Pid {
    fn to_proto(&self) -> actor_proto::Pid {
        actor_proto::Pid {
            address: self.address().to_string(),
            id: self.id().to_string(),
            request_id: self.request_id(),
        }
    }
}

impl actor_proto::Pid {
    /// The core PID for this wire PID.
    pub fn to_pid(&self) -> protoactor::Pid {
        let p = protoactor::Pid::new(self.address.as_str(), self.id.as_str());
        if self.request_id != 0 {
            p.with_request_id(self.request_id)
        } else {
            p
        }
    }
}

impl From<&protoactor::Pid> for actor_proto::Pid {
    fn from(p: &protoactor::Pid) -> Self {
        p.to_proto()
    }
}
