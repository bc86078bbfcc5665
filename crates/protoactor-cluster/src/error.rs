//! Why a cluster operation failed: the one error type of the crate, at its bottom so every
//! layer can return it.

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
    /// No member of the current topology hosts the kind.
    #[error("no member hosts kind {kind:?}")]
    NoOwner {
        /// The kind asked for.
        kind: String,
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
    /// No answer in time.
    #[error("timed out")]
    Timeout,
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
    /// Another future error.
    #[error(transparent)]
    Future(FutureError),
    /// The cluster (or its actor system) is shut down.
    #[error("the cluster is shut down")]
    ShutDown,
}

impl ClusterError {
    /// Errors a later attempt may not get: the owner moved, was not known yet, or is gone.
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClusterError::NoOwner { .. }
                | ClusterError::ActivationFailed { .. }
                | ClusterError::DeadLetter
                | ClusterError::Timeout
        )
    }
}
