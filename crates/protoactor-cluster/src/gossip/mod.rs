//! Gossip in protoactor-go's dialect (protoactor-go's `cluster/gossiper.go`, `gossip_actor.go`,
//! `informer.go` and `gossip_state_management.go`): the root actor `gossip` keeps a
//! `GossipState` (per member id, per key, a value with a sequence number), sets this node's
//! `heartbeat` every tick and `topology` on each topology change, and every
//! [`GossipConfig::interval`] sends up to [`GossipConfig::fan_out`] random peers a
//! `GossipRequest` with what they have not acknowledged yet. Incoming state is merged by
//! sequence number, as Go merges it.
//!
//! Where Go is weak, this actor does better and stays compatible:
//! * per-target watermarks advance only after the peer answered, so lost gossip is resent
//!   (Go commits them before sending);
//! * the answer to a `GossipRequest` carries the sender's missing state (Go's is empty);
//! * a heartbeat that expires blocks the member only until a fresh heartbeat arrives
//!   (Go: forever), and `blocked` ids gossiped by others are never applied, so one bad member
//!   cannot ban others; the `topology` this node gossips has `blocked` empty;
//! * graceful leave pushes `left` to every member and waits for their answers (Go: one
//!   best-effort round to three);
//! * values for this node's own id are never taken from others, and undecodable values are
//!   kept as opaque bytes: garbage in an `Any` cannot break the actor;
//! * the state lives outside the actor instance, so a restart keeps the sequence counter;
//! * values are trusted only where they can be (Go takes any value about any id from
//!   anyone): a request from an address the provider does not list is dropped; values about
//!   ids the provider does not list are dropped, never stored or relayed; a value about this
//!   node above its own counter moves the counter past it and republishes this node's values;
//!   a `left` older than the member's heartbeat is ignored; sequence numbers may not jump
//!   out of reach; values, keys, members and bytes are bounded ([`GossipLimits`]), and a
//!   round's request stays under the transport limit. What was refused is counted
//!   ([`GossipRejections`]) and logged;
//! * optionally (Rust-only clusters), each member signs its own values with the cluster's
//!   secret and values without a valid signature are dropped ([`auth`]); or, with mutual
//!   TLS, with its own TLS key, and values filed under a member are taken only if signed by
//!   the key of a certificate of the CA naming that member's host (`certs`, feature `tls`).
//!
//! The module reads from the bottom up: [`wire`] (names, keys, packing), [`auth`] and `certs` (signed
//! values), [`state`] (the
//! state and its merge), `heartbeat` (expiry and blocking), [`actor`] (the actor, the
//! rounds and the graceful leave).

pub mod actor;
pub mod auth;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod certs;
mod heartbeat;
pub mod state;
pub mod wire;

pub use actor::{ActorCounts, GossipConfig, Gossiper};
pub use auth::GossipSecret;
#[cfg(feature = "tls")]
pub use certs::{MemberSignatures, CERT_KEY};
pub use state::{merge_state, GossipLimits, GossipRejections, GossipUpdate};
pub use wire::{pack, GOSSIP_ACTOR_NAME, HEARTBEAT_KEY, LEFT_KEY, TOPOLOGY_KEY};
