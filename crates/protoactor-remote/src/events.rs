//! Events remote publishes on the actor system's event stream.

use protoactor::Pid;

/// An outbound connection to `address` completed its handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConnected {
    /// The peer's address.
    pub address: String,
}

/// The endpoint to `address` is gone (connection failed, broke or was closed by the peer).
/// Watchers of actors there got `Terminated { why: AddressTerminated }`; the next send
/// reconnects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointTerminated {
    /// The peer's address.
    pub address: String,
}

/// Which way a message that failed was going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received from a peer.
    Inbound,
    /// Being sent to a peer.
    Outbound,
}

/// A message could not be serialized, decoded or delivered. The message itself went to dead
/// letters; the stream it travelled on is unaffected. One exception: when gRPC itself refused
/// an inbound frame (over the decode limit, or not protobuf), that stream ended; the event
/// then has no target and an empty type name, and the frame's messages are lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDeliveryError {
    /// Inbound or outbound.
    pub direction: Direction,
    /// The peer (for inbound messages: the peer's advertised address if known).
    pub peer: String,
    /// The target, when known.
    pub target: Option<Pid>,
    /// The proto full name or Rust type name of the message, when known.
    pub type_name: String,
    /// What went wrong.
    pub error: String,
}
