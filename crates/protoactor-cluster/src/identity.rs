//! Cluster identities: a grain is addressed by `(identity, kind)`.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use protoactor::Pid;

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

/// The identity a grain PID's id carries, if it has the shape the placement actors give it:
/// `<placement actor>/<identity>$<n>` (Go's `SpawnPrefix`; the placement actor's own id has
/// no `/` and the generated suffix no `$`). Tables of grains keep the PID alone and read
/// the identity from it, instead of a copy of the identity per grain.
pub fn identity_in_pid_id(id: &str) -> Option<&str> {
    let start = id.find('/')? + 1;
    let end = id.rfind('$')?;
    id.get(start..end)
}

/// A grain's `(kind, identity)` as a key, whatever holds it: a [`ClusterIdentity`], a
/// `(kind, identity)` pair or a [`GrainPid`]. Tables keyed by `GrainPid` (or
/// [`IdentityKey`]) are looked up with a `&ClusterIdentity` through `Borrow<dyn GrainKey>`
/// (all of them hash and compare as the pair).
pub trait GrainKey {
    /// The kind.
    fn kind(&self) -> &str;
    /// The identity.
    fn identity(&self) -> &str;
}

impl GrainKey for ClusterIdentity {
    fn kind(&self) -> &str {
        &self.kind
    }
    fn identity(&self) -> &str {
        &self.identity
    }
}

/// `(kind, identity)`.
impl GrainKey for (&str, &str) {
    fn kind(&self) -> &str {
        self.0
    }
    fn identity(&self) -> &str {
        self.1
    }
}

impl Hash for dyn GrainKey + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind().hash(state);
        self.identity().hash(state);
    }
}
impl PartialEq for dyn GrainKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity() && self.kind() == other.kind()
    }
}
impl Eq for dyn GrainKey + '_ {}

/// A [`ClusterIdentity`] as a key that hashes as the pair (its own `Hash` differs), so a
/// table of them is looked up with any `&dyn GrainKey`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityKey(pub ClusterIdentity);

impl Hash for IdentityKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (&self.0 as &dyn GrainKey).hash(state)
    }
}

impl<'a> Borrow<dyn GrainKey + 'a> for IdentityKey {
    fn borrow(&self) -> &(dyn GrainKey + 'a) {
        &self.0
    }
}

/// A grain's PID with its kind, keyed as its `(kind, identity)`: the identity is read from
/// the PID's id ([`identity_in_pid_id`]), so a table of them holds no copy of it (the kind
/// is shared by all the grains of a kind). Build one with [`GrainPid::new`], which checks
/// that the PID carries the identity.
#[derive(Clone, Debug)]
pub struct GrainPid {
    pid: Pid,
    kind: Arc<str>,
}

impl GrainPid {
    /// `pid` of `ci` (`kind` is `ci`'s kind, shared); `pid` back if its id does not carry
    /// `ci`'s identity.
    pub fn new(ci: &ClusterIdentity, kind: Arc<str>, pid: Pid) -> Result<Self, Pid> {
        if identity_in_pid_id(pid.id()) == Some(ci.identity.as_str()) && *kind == *ci.kind {
            Ok(GrainPid { pid, kind })
        } else {
            Err(pid)
        }
    }
    /// The PID.
    pub fn pid(&self) -> &Pid {
        &self.pid
    }
    /// The cluster identity (a copy).
    pub fn cluster_identity(&self) -> ClusterIdentity {
        ClusterIdentity::new(self.identity(), self.kind())
    }
}

impl GrainKey for GrainPid {
    fn kind(&self) -> &str {
        &self.kind
    }
    fn identity(&self) -> &str {
        identity_in_pid_id(self.pid.id()).expect("checked by GrainPid::new")
    }
}

impl Hash for GrainPid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn GrainKey).hash(state)
    }
}
impl PartialEq for GrainPid {
    fn eq(&self, other: &Self) -> bool {
        (self as &dyn GrainKey) == (other as &dyn GrainKey)
    }
}
impl Eq for GrainPid {}

impl<'a> Borrow<dyn GrainKey + 'a> for GrainPid {
    fn borrow(&self) -> &(dyn GrainKey + 'a) {
        self
    }
}

/// A grain's PID keyed as the identity its id carries ([`identity_in_pid_id`]), for a table
/// of the grains of one kind: 8 bytes per entry (the PID's `Arc`) where a [`GrainPid`] is 24,
/// which at a million grains and hashbrown's load is about 33 B per grain less (issue 22).
/// Looked up with the identity (`Borrow<str>`: it hashes and compares as that `str`). Build
/// one with [`IdentityPid::new`], which checks that the PID carries an identity.
#[derive(Clone, Debug)]
pub(crate) struct IdentityPid(Pid);

impl IdentityPid {
    /// `pid`, if its id carries an identity; `pid` back if not.
    pub(crate) fn new(pid: Pid) -> Result<Self, Pid> {
        match identity_in_pid_id(pid.id()) {
            Some(_) => Ok(IdentityPid(pid)),
            None => Err(pid),
        }
    }
    /// The PID.
    pub(crate) fn pid(&self) -> &Pid {
        &self.0
    }
    /// The identity its id carries.
    pub(crate) fn identity(&self) -> &str {
        identity_in_pid_id(self.0.id()).expect("checked by IdentityPid::new")
    }
}

impl Hash for IdentityPid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that a lookup by the identity finds the key.
        self.identity().hash(state)
    }
}
impl PartialEq for IdentityPid {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}
impl Eq for IdentityPid {}

impl Borrow<str> for IdentityPid {
    fn borrow(&self) -> &str {
        self.identity()
    }
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
    // A PID's interior mutability is its process cache, which neither hash nor eq reads.
    #[allow(clippy::mutable_key_type)]
    fn a_grain_pid_is_found_by_its_cluster_identity() {
        assert_eq!(
            identity_in_pid_id("partition-activator/a/b$c$1x"),
            Some("a/b$c")
        );
        assert_eq!(identity_in_pid_id("partition-activator/$1"), Some(""));
        assert_eq!(identity_in_pid_id("$1"), None);
        assert_eq!(identity_in_pid_id("x$1/y"), None);
        let kind: Arc<str> = Arc::from("k");
        let pid = Pid::new("h:1", "partition-activator/a/b$c$1x");
        let ci = ClusterIdentity::new("a/b$c", "k");
        let g = GrainPid::new(&ci, kind.clone(), pid.clone()).expect("carries it");
        assert_eq!(g.cluster_identity(), ci);
        let mut set = std::collections::HashSet::new();
        set.insert(g);
        assert!(set.contains(&ci as &dyn GrainKey));
        assert!(!set.contains(&ClusterIdentity::new("a/b$c", "other") as &dyn GrainKey));
        assert!(!set.contains(&ClusterIdentity::new("a/b", "k") as &dyn GrainKey));
        assert!(GrainPid::new(
            &ClusterIdentity::new("other", "k"),
            kind.clone(),
            pid.clone()
        )
        .is_err());
        assert!(GrainPid::new(&ClusterIdentity::new("a/b$c", "j"), kind, pid).is_err());
    }

    #[test]
    // A PID's interior mutability is its process cache, which neither hash nor eq reads.
    #[allow(clippy::mutable_key_type)]
    fn a_pid_keyed_by_its_identity_is_found_by_the_identity() {
        let pid = Pid::new("h:1", "partition-activator/a/b$c$1x");
        let key = IdentityPid::new(pid.clone()).expect("carries it");
        assert_eq!(key.identity(), "a/b$c");
        let mut set = std::collections::HashSet::new();
        set.insert(key);
        assert_eq!(set.get("a/b$c").map(|k| k.pid()), Some(&pid));
        assert!(!set.contains("a/b"));
        // Another activation of the same identity is the same key.
        let newer = IdentityPid::new(Pid::new("h:1", "partition-activator/a/b$c$2")).unwrap();
        assert!(set.contains(&newer));
        assert!(IdentityPid::new(Pid::new("h:1", "elsewhere")).is_err());
        // The entry of a table of a million grains: the PID's pointer alone.
        assert_eq!(std::mem::size_of::<IdentityPid>(), 8);
    }

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
