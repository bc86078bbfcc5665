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
//! provider), `consul` (a Consul agent's services and TTL checks, as Go's consul
//! provider) and `kubernetes` (pod labels, as Go's k8s provider; the repository's
//! `docs/kubernetes.md`).
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
//! | `persistence` | yes | the `persistent` module: persistent typed grains (journal and snapshots through a `protoactor-persistence` provider; pure Rust, the providers are that crate's features), and `pubsub::ProviderStore` (durable topic subscriptions in such a provider) |
//! | `postgres` | no | `persistence` with protoactor-persistence's PostgreSQL provider (`tokio-postgres`) |
//! | `etcd` | no | the `etcd` provider: members as keys with leases in an etcd server, the key layout of protoactor-go's etcd provider; and `etcd_lookup`, a strongly consistent identity lookup (one activation per identity, registered in etcd on the member's lease, fenced when the lease runs out; Rust members only). Building it needs a system `protoc` (the `etcd-client` crate's build script runs it) |
//! | `consul` | no | the `consul` provider: a Consul agent's services and TTL checks, as protoactor-go's consul provider (no extra dependency) |
//! | `management` | no | the `management` module: a read-only HTTP API (axum) and a dashboard page about the running cluster |
//! | `metrics` | no | grain call latency per kind and method as the OpenTelemetry histogram `protocluster_grain_request_duration` of the actor system's meter (`protoactor` feature `metrics`) |
//! | `tls` | no | `protoactor-remote`'s `tls` feature: members start their remote with `RemoteConfig::with_mutual_tls` (see "Authentication" below) |
//! | `kubernetes` | no | the `kubernetes` provider: pod labels watched through the Kubernetes API, as protoactor-go's k8s provider (kube and k8s-openapi; needs Rust 1.89+; the binary picks the k8s-openapi API version feature) |
//!
//! With default features the crate builds without a system `protoc`: its own `.proto` files
//! are compiled by protox (pure Rust). The test and automanaged providers are always there.
//!
//! ## Authentication
//!
//! By default, as in protoactor-go, nothing between members is authenticated. Two options,
//! which combine:
//!
//! * **Mutual TLS** (feature `tls`): each member starts its remote with
//!   `RemoteConfig::with_mutual_tls(cert_pem, key_pem, ca_pem)` and a certificate signed by
//!   the cluster's CA. Every connection between members is then authenticated both ways:
//!   grain calls, activation requests, gossip, watches, everything. A peer without such a
//!   certificate fails the handshake and reaches nothing. protoactor-go members take part
//!   when configured the same way (`remote.WithServerOptions` with
//!   `grpc.Creds(credentials.NewTLS(..RequireAndVerifyClientCert..))` and
//!   `remote.WithDialOptions` with `grpc.WithTransportCredentials(..)`).
//! * **Signed gossip** ([`ClusterConfig::with_gossip_secret`], Rust-only clusters): a member
//!   enters the topology only once gossip it signed has arrived.
//! * **Member signatures** (`ClusterConfig::with_member_signatures`, feature `tls`,
//!   Rust-only clusters with mutual TLS): each member signs its gossip with its TLS key and
//!   publishes its certificate; values filed under a member are taken only if signed by a
//!   certificate of the CA naming that member's host, and the remote refuses messages whose
//!   sender address names a host the connection's certificate does not
//!   (`TlsConfig::with_peer_address_binding`). One member cannot speak for a member on
//!   another host.
//!
//! Membership still comes from the provider, but with either option a listed member joins
//! a member's topology only once it proved itself: with a secret, once gossip it signed
//! arrived; with mutual TLS and no secret, once its own gossip reached that member directly
//! over its transport (a gossip request from its address, or its answer to one:
//! [`ClusterConfig::gossip_admission`], on by default with mutual TLS and available without
//! TLS through [`ClusterConfig::with_gossip_admission`]). A listed member whose certificate
//! is refused is thus never admitted, and no grain is placed on it; protoactor-go members
//! gossip, so they are admitted. Without member signatures, once authenticated, members
//! trust each other fully: a certificate is not tied to a member's address, so a member can
//! still claim another's sender address. The automanaged provider's `/_health` endpoint and the management API are plain
//! HTTP on their own ports; mutual TLS does not cover them.
//!
//! ## Pub/sub
//!
//! [`pubsub`] is protoactor-go's cluster pub/sub (topics of kind `prototopic`, the delivery
//! actor `$pubsub-delivery`), started with the cluster as a [`ClusterService`]:
//! `config.with_service(PubSub::new(PubSubConfig::default()))`; then
//! `cluster.publisher().publish(topic, msg)` and `cluster.subscribe_pid(topic, &pid)`.
//!
//! ## Layers
//!
//! The crate reads from the bottom up. A module names (`crate::module`) only modules of its
//! own layer or of lower ones, and no modules name each other in a cycle, not even inside a
//! layer; `scripts/check-layers.sh`, run by CI, reads this table and fails on a name of a
//! higher layer and on an import cycle (which it prints).
//!
//! ```text
//!  0 base        proto, error, envelope, identity, latency, etcd_common
//!                  the generated messages, ClusterError, the grain envelopes, identities,
//!                  request latency histograms, the etcd client settings and connection
//!                  that the etcd provider and lookup share (feature `etcd`)
//!  1 members     member, hash, kind, pid_cache
//!                  members and their addresses, Go's topology and owner hashes, kinds,
//!                  the PID cache
//!  2 membership  member_list
//!                  the current topology, blocking, ClusterTopology events
//!  3 gossip      gossip
//!                  gossip/wire.rs (names, keys, packing), gossip/auth.rs (signed values),
//!                  gossip/state.rs (state, merge),
//!                  gossip/heartbeat.rs (expiry, blocking), gossip/actor.rs (actor, rounds)
//!  4 placement   identity_lookup, activator, disthash, etcd_lookup
//!                  the lookup trait and its LookupContext, the placement actor, disthash,
//!                  and the strongly consistent lookup on etcd with lease fencing (feature
//!                  `etcd`)
//!  5 providers   provider, test_provider, automanaged, etcd, consul, kubernetes
//!                  the provider trait and its ProviderContext, the providers (etcd, consul
//!                  and kubernetes behind the cargo features of the same names)
//!  6 cluster     config, cluster
//!                  the config and the Cluster façade: start, calls (cluster/call.rs), shutdown
//!  7 services    grain, persistent, pubsub, management
//!                  what runs on a started cluster: grain contexts and typed grains,
//!                  persistent typed grains on top of them, pub/sub, and the management HTTP
//!                  API (feature `management`)
//! ```
//!
//! Identity lookups and providers see the cluster only through the narrow context the
//! façade hands them ([`LookupContext`], [`ProviderContext`]), so they sit below it.

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
pub mod envelope;
pub mod error;
#[cfg(feature = "etcd")]
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
pub mod etcd;
#[cfg(feature = "etcd")]
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
pub mod etcd_common;
#[cfg(feature = "etcd")]
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
pub mod etcd_lookup;
pub mod gossip;
pub mod grain;
pub mod hash;
pub mod identity;
pub mod identity_lookup;
pub mod kind;
#[cfg(feature = "kubernetes")]
#[cfg_attr(docsrs, doc(cfg(feature = "kubernetes")))]
pub mod kubernetes;
pub mod latency;
#[cfg(feature = "management")]
#[cfg_attr(docsrs, doc(cfg(feature = "management")))]
pub mod management;
pub mod member;
pub mod member_list;
#[cfg(feature = "persistence")]
#[cfg_attr(docsrs, doc(cfg(feature = "persistence")))]
pub mod persistent;
pub mod pid_cache;
pub mod provider;
pub mod pubsub;
pub mod test_provider;

/// Generated protobuf types of package `cluster` (`cluster.proto`, `gossip.proto`,
/// `grain.proto`, `pubsub.proto`); `actor.PID` is [`protoactor_remote::actor_proto::Pid`].
pub mod proto {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/cluster.rs"));
}

pub use cluster::{CallOptions, Cluster};
pub use config::{ClusterConfig, ClusterService};
pub use disthash::DistHashIdentityLookup;
pub use envelope::GrainErrorReason;
pub use error::ClusterError;
pub use gossip::GossipSecret;
pub use grain::{GrainContext, GrainCtx, GrainError, GrainMethod, Responder};
pub use identity_lookup::{IdentityLookup, LookupContext, PlacementTimings};
pub use kind::Kind;
pub use member_list::MemberList;
pub use proto::{
    ActivationRequest, ActivationResponse, ActivationTerminated, ClusterIdentity, ClusterTopology,
    GrainErrorResponse, GrainRequest, Member,
};
pub use provider::{ClusterProvider, ProviderContext, ProviderFuture};
