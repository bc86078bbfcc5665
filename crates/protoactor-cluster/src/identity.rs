//! Cluster identities: a grain is addressed by `(identity, kind)`.

use std::fmt;

use crate::error::ClusterError;
use crate::proto::ClusterIdentity;

/// Longest grain identity, in bytes. The identity is part of the grain's PID and of every
/// key that names the activation, so an unbounded one would make each request cost what
/// the peer chooses (Go sets no limit).
pub const MAX_IDENTITY_LEN: usize = 1024;
/// Longest kind name, in bytes.
pub const MAX_KIND_LEN: usize = 256;

impl ClusterIdentity {
    /// The grain `identity` of `kind`.
    pub fn new(identity: impl Into<String>, kind: impl Into<String>) -> Self {
        ClusterIdentity {
            identity: identity.into(),
            kind: kind.into(),
        }
    }

    /// Checks the lengths: an identity over [`MAX_IDENTITY_LEN`] or a kind over
    /// [`MAX_KIND_LEN`] is [`ClusterError::TooLong`].
    pub fn validate(&self) -> Result<(), ClusterError> {
        check_len("identity", &self.identity, MAX_IDENTITY_LEN)?;
        check_len("kind", &self.kind, MAX_KIND_LEN)
    }
}

/// `Err(TooLong)` if `value` is longer than `limit` bytes.
pub(crate) fn check_len(what: &'static str, value: &str, limit: usize) -> Result<(), ClusterError> {
    if value.len() > limit {
        return Err(ClusterError::TooLong {
            what,
            len: value.len(),
            limit,
        });
    }
    Ok(())
}

impl fmt::Display for ClusterIdentity {
    /// `kind/identity`, Go's `ToShortString`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_and_kinds_have_length_limits() {
        assert!(ClusterIdentity::new("a".repeat(MAX_IDENTITY_LEN), "k")
            .validate()
            .is_ok());
        let e = ClusterIdentity::new("a".repeat(MAX_IDENTITY_LEN + 1), "k")
            .validate()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the identity is 1025 bytes long, over the limit of 1024"
        );
        assert!(ClusterIdentity::new("a", "k".repeat(MAX_KIND_LEN + 1))
            .validate()
            .is_err());
    }
}
