//! Gossip on the wire: the actor name and keys protoactor-go uses, values packed as `Any`
//! the way Go's `anypb.New` packs them, and the millisecond clock of the timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

use prost_types::Any;

/// Name of the gossip actor on every member (Go's `DefaultGossipActorName`).
pub const GOSSIP_ACTOR_NAME: &str = "gossip";
/// Key of a member's last `ClusterTopology`.
pub const TOPOLOGY_KEY: &str = "topology";
/// Key of a member's `MemberHeartbeat` (the 2024 module's spelling).
pub const HEARTBEAT_KEY: &str = "heartbeat";
/// Key set (to `google.protobuf.Empty`) by a member that leaves gracefully.
pub const LEFT_KEY: &str = "left";
/// The type URL of the `left` value.
pub(crate) const EMPTY_TYPE_URL: &str = "type.googleapis.com/google.protobuf.Empty";

/// Now, in Unix milliseconds (the unit of `local_timestamp_unix_milliseconds`).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An `Any` holding `msg`, with the type URL Go's `anypb.New` writes.
pub fn pack<M: prost::Name>(msg: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: msg.encode_to_vec(),
    }
}
