//! Cluster identities: a grain is addressed by `(identity, kind)`.

use std::fmt;

use crate::proto::ClusterIdentity;

impl ClusterIdentity {
    /// The grain `identity` of `kind`.
    pub fn new(identity: impl Into<String>, kind: impl Into<String>) -> Self {
        ClusterIdentity {
            identity: identity.into(),
            kind: kind.into(),
        }
    }
}

impl fmt::Display for ClusterIdentity {
    /// `kind/identity`, Go's `ToShortString`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.identity)
    }
}
