//! # protoactor-cluster
//!
//! Proto.Actor cluster for Rust: virtual actors (*grains*) addressed by
//! [`ClusterIdentity`] `(identity, kind)`, activated on demand on one member of the
//! cluster and reached from any member, **in one cluster with protoactor-go members**.
//! It speaks the Go dialect: the same member list and topology hash, gossip actor `gossip`,
//! identity lookup `disthash` with the `partition-activator` actor, and grain PIDs shaped
//! `partition-activator/<identity>$<n>` (protoactor-go's `cluster/member_list.go`, `gossiper.go` and
//! `identitylookup/disthash/`).
//!
//! ```
//! use protoactor::prelude::*;
//! use protoactor_cluster::{
//!     CallOptions, Cluster, ClusterConfig, DistHashIdentityLookup, GrainContext, Kind,
//!     test_provider::{InMemAgent, TestProvider},
//! };
//! use protoactor_remote::{Remote, RemoteConfig, WireVariant};
//!
//! let system = ActorSystem::new();
//! // Legacy2024 is the wire variant protoactor-go (the 2024 module) speaks.
//! let remote = Remote::start(
//!     &system,
//!     RemoteConfig::local().with_wire_variant(WireVariant::Legacy2024),
//! )
//! .unwrap();
//! let hello = Props::from_func(|ctx| {
//!     if let Some(name) = ctx.message_as::<String>() {
//!         let me = ctx.cluster_identity().unwrap();
//!         ctx.respond(format!("Hello {name} from {}", me.identity));
//!     }
//! });
//! let agent = InMemAgent::new();
//! let cluster = Cluster::start_member(
//!     &system,
//!     &remote,
//!     ClusterConfig::new("demo", TestProvider::new(&agent), DistHashIdentityLookup::new())
//!         .with_kind(Kind::new("hello", hello)),
//! )
//! .unwrap();
//! // (A String only works inside one process: see "Message types" below.)
//! let reply: String = cluster
//!     .request_blocking_as("roger", "hello", String::from("Roger"), &CallOptions::default())
//!     .unwrap();
//! assert_eq!(reply, "Hello Roger from roger");
//! cluster.shutdown_blocking(true);
//! system.shutdown();
//! ```
//!
//! ## Message types: register them on both sides
//!
//! Everything that crosses the network is a protobuf message carried with its proto full
//! name (`shared.HelloRequest`), and **protoactor-go exits the whole process when it
//! receives a type name it has not linked in** (its `remote/proto_serializer.go` does not check for an unknown name). So, for every grain message
//! type (requests *and* replies):
//!
//! * **Rust side:** define it in a `.proto` file (same package and names as the Go side),
//!   generate it with prost with type names enabled (`prost_build::Config::enable_type_names`),
//!   and register it once on the remote registry before calling:
//!   `remote.serialization().register::<shared::HelloRequest>()`.
//!   The cluster registers its own `cluster.*` messages itself.
//! * **Go side:** import the Go package generated from the same `.proto` file in the Go
//!   member's program (a blank import is enough), so `proto.MessageName` resolves there.
//!
//! A Rust node only ever sends Go the `cluster.*` types of the 2024 module (never
//! `cluster.GossipMap`), `actor.*` types, and the user types registered this way. A type
//! that is not registered is never written to the wire: the send fails locally, the message
//! goes to dead letters and a `RemoteDeliveryError` is published.
//!
//! ## Membership
//!
//! A [`ClusterProvider`] feeds the complete member list to the [`MemberList`]; whenever the
//! set of member ids changes, a [`ClusterTopology`] (`members`, `joined`, `left`, ascending by
//! id) is published on the actor system's event stream
//! (`system.event_stream().subscribe_to::<ClusterTopology, _>(..)`), and
//! `cluster.member_list().members()` reads the current topology. Providers here:
//! [`test_provider`] (one process), [`automanaged`] (Go's `/_health` endpoints), and with
//! cargo features `etcd` (keys with leases in an etcd server, shared with Go's etcd
//! provider) and `consul` (a Consul agent's services and TTL checks, as Go's consul
//! provider).
//!
//! ## Inside a grain
//!
//! [`GrainContext`] (implemented for [`protoactor::Context`]) gives a grain its
//! [`ClusterIdentity`] (identity and kind) and its [`Cluster`] from the first message on,
//! `Started` included. Generated-grain style calls travel as [`GrainRequest`] and fail with
//! [`GrainErrorResponse`], as with protoc-gen-go-grain.
//!
//! ## Typed grains
//!
//! `protoactor-cluster-build` (in a `build.rs`) generates from a `.proto` service a grain
//! trait, its [`Kind`] and a typed client, call-compatible with the code protoactor-go's
//! `protoc-gen-go-grain` generates from the same file; [`grain`] is their runtime
//! ([`GrainError`], [`GrainCtx`], [`Responder`]).
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `etcd` | no | the `etcd` provider: members as keys with leases in an etcd server, the key layout of protoactor-go's etcd provider. Building it needs a system `protoc` (the `etcd-client` crate's build script runs it) |
//! | `consul` | no | the `consul` provider: a Consul agent's services and TTL checks, as protoactor-go's consul provider (no extra dependency) |
//!
//! With default features the crate builds without a system `protoc`: its own `.proto` files
//! are compiled by protox (pure Rust). The test and automanaged providers are always there.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod activator;
pub mod automanaged;
pub mod cluster;
pub mod config;
#[cfg(feature = "consul")]
#[cfg_attr(docsrs, doc(cfg(feature = "consul")))]
pub mod consul;
pub mod disthash;
#[cfg(feature = "etcd")]
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
pub mod etcd;
pub mod gossip;
pub mod grain;
pub mod hash;
pub mod identity_lookup;
pub mod kind;
pub mod member;
pub mod member_list;
pub mod pid_cache;
pub mod provider;
pub mod test_provider;

/// Generated protobuf types of package `cluster` (`cluster.proto`, `gossip.proto`,
/// `grain.proto`); `actor.PID` is [`protoactor_remote::actor_proto::Pid`].
pub mod proto {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/cluster.rs"));
}

pub use cluster::{CallOptions, Cluster, ClusterError};
pub use config::ClusterConfig;
pub use disthash::DistHashIdentityLookup;
pub use grain::{GrainContext, GrainCtx, GrainError, GrainErrorReason, Responder};
pub use identity_lookup::IdentityLookup;
pub use kind::Kind;
pub use member_list::MemberList;
pub use proto::{
    ActivationRequest, ActivationResponse, ActivationTerminated, ClusterIdentity, ClusterTopology,
    GrainErrorResponse, GrainRequest, Member,
};
pub use provider::{ClusterProvider, ProviderContext, ProviderFuture};
