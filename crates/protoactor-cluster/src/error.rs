//! Why a cluster operation failed: the one error type of the crate, at its bottom so every
//! layer can return it.

use std::time::Duration;

use protoactor::FutureError;

use crate::proto::GrainErrorResponse;

/// Why a cluster operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterError {
    /// A cluster is already started on this actor system (or the component was started twice).
    #[error("the cluster is already started on this actor system")]
    AlreadyStarted,
    /// An identity or a kind name is longer than the cluster takes.
    #[error("the {what} is {len} bytes long, over the limit of {limit}")]
    TooLong {
        /// `identity` or `kind`.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A gossip value is larger than the members take.
    #[error("gossip value {key:?} is {bytes} bytes, over the limit of {limit}")]
    GossipValueTooLarge {
        /// The key.
        key: String,
        /// Its encoded size.
        bytes: usize,
        /// The limit (gossip's `max_value_bytes`).
        limit: usize,
    },
    /// A gossip secret is too short to sign with.
    #[error("a gossip secret needs at least {min} bytes, this one has {len}")]
    WeakSecret {
        /// Its length.
        len: usize,
        /// The least length taken.
        min: usize,
    },
    /// Member signatures (`ClusterConfig::with_member_signatures`, feature `tls`) cannot be
    /// used: the remote has no mutual TLS, a gossip secret is set too, or the
    /// TLS certificate or key cannot sign.
    #[error("member signatures: {0}")]
    MemberSignatures(String),
    /// A kind name is empty or contains `/`.
    #[error("invalid kind name {0:?}: it must be non-empty and contain no '/'")]
    InvalidKind(String),
    /// Two kinds have the same name.
    #[error("kind {0:?} is registered twice")]
    DuplicateKind(String),
    /// The remote's advertised address is not `host:port`.
    #[error("the remote address {0:?} is not host:port")]
    InvalidAddress(String),
    /// A cluster actor could not be spawned.
    #[error("cannot spawn a cluster actor: {0}")]
    Spawn(String),
    /// The provider failed.
    #[error("cluster provider: {0}")]
    Provider(String),
    /// No member of the current topology hosts the kind: either the topology is empty (no
    /// member is known yet, e.g. the provider is not connected) or none of its `members`
    /// registered the kind (a configuration error, so it is not retried).
    #[error("{}", no_owner_text(kind, *members))]
    NoOwner {
        /// The kind asked for.
        kind: String,
        /// How many members the topology had (0: empty).
        members: usize,
    },
    /// The provider was started without a connection to its backend (e.g. the etcd
    /// provider with `EtcdConfig::with_start_anyway`, feature `etcd`) and has
    /// not connected yet: the member list is unknown, so no call can be placed. Not retried:
    /// a call fails at once, and succeeds once the provider connects.
    #[error("the cluster provider is not connected yet: {reason}")]
    ProviderNotConnected {
        /// The provider's last connection error.
        reason: String,
    },
    /// The owner answered `ActivationResponse { failed: true }` (it does not host the kind, or
    /// the spawn failed).
    #[error("the member at {owner} could not activate the grain")]
    ActivationFailed {
        /// The owner's address.
        owner: String,
    },
    /// The request reached no process (a stopped grain or a member that is gone).
    #[error("dead letter: the target does not exist")]
    DeadLetter,
    /// No answer in time: names the grain, the request's message type and the time waited.
    #[error("{} timed out after {after:?}", timeout_subject(identity, message))]
    Timeout {
        /// The grain, `kind/identity`.
        identity: String,
        /// The request's message type (`""`: the grain's activation timed out, before a
        /// request was sent).
        message: &'static str,
        /// How long the call (or the attempt) waited.
        after: Duration,
    },
    /// The last of the allowed attempts failed.
    #[error("{identity}: gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        /// `kind/identity`.
        identity: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<ClusterError>,
    },
    /// The grain answered with an error.
    #[error(transparent)]
    Grain(GrainErrorResponse),
    /// The answer had another type than expected.
    #[error("expected a response of type {expected}, got {actual}")]
    UnexpectedResponse {
        /// The expected type.
        expected: &'static str,
        /// The type that came.
        actual: &'static str,
    },
    /// The reply arrived but this node cannot decode it: its type is not registered here
    /// (`remote.serialization().register::<T>()`) or its bytes are bad.
    #[error("the reply of type {type_name:?} could not be decoded here: {error} (register the reply type on this node's remote serialization)")]
    UndecodableReply {
        /// The proto full name the reply came with.
        type_name: String,
        /// The decoder's error.
        error: String,
    },
    /// Another future error.
    #[error(transparent)]
    Future(FutureError),
    /// The cluster (or its actor system) is shut down.
    #[error("the cluster is shut down")]
    ShutDown,
}

fn timeout_subject(identity: &str, message: &str) -> String {
    if message.is_empty() {
        format!("activating grain {identity}")
    } else {
        format!("request to grain {identity} ({message})")
    }
}

fn no_owner_text(kind: &str, members: usize) -> String {
    if members == 0 {
        format!(
            "no owner for kind {kind:?}: the topology is empty (no member is known yet; \
             is the cluster provider connected?)"
        )
    } else {
        format!(
            "no member hosts kind {kind:?}: none of the {members} members of the topology \
             registered it (ClusterConfig::with_kind)"
        )
    }
}

impl ClusterError {
    /// Errors a later attempt may not get: the owner moved, was not known yet, or is gone.
    /// A kind that no member of a non-empty topology hosts is a configuration error, not
    /// retried; an empty topology is (the members may not be known yet).
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClusterError::NoOwner { members: 0, .. }
                | ClusterError::ActivationFailed { .. }
                | ClusterError::DeadLetter
                | ClusterError::Timeout { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_owner_says_whether_the_topology_is_empty() {
        let empty = ClusterError::NoOwner {
            kind: "Account".into(),
            members: 0,
        };
        assert_eq!(
            empty.to_string(),
            "no owner for kind \"Account\": the topology is empty (no member is known yet; \
             is the cluster provider connected?)"
        );
        assert!(empty.is_retryable());
        let unhosted = ClusterError::NoOwner {
            kind: "Account".into(),
            members: 3,
        };
        assert_eq!(
            unhosted.to_string(),
            "no member hosts kind \"Account\": none of the 3 members of the topology \
             registered it (ClusterConfig::with_kind)"
        );
        assert!(!unhosted.is_retryable());
    }

    #[test]
    fn a_timeout_names_the_grain_the_message_and_the_wait() {
        let request = ClusterError::Timeout {
            identity: "Account/alice".into(),
            message: "bank::Deposit",
            after: Duration::from_secs(5),
        };
        assert_eq!(
            request.to_string(),
            "request to grain Account/alice (bank::Deposit) timed out after 5s"
        );
        let activation = ClusterError::Timeout {
            identity: "Account/alice".into(),
            message: "",
            after: Duration::from_millis(250),
        };
        assert_eq!(
            activation.to_string(),
            "activating grain Account/alice timed out after 250ms"
        );
        assert!(activation.is_retryable());
    }
}
