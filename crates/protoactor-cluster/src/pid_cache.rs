//! The PID cache: where each grain was last found, so a call needs no activation round trip.
//!
//! Keyed by the whole [`ClusterIdentity`] (Go's `identity + "." + kind` string key is
//! ambiguous). Entries are evicted when a call to the PID fails (dead letter or timeout),
//! when a new topology makes another member the owner of the identity (its member left, or
//! a joining member took the identity over), and when an `ActivationTerminated` for it
//! arrives at this node's `eventstream` (Go broadcasts these but never uses them).

use dashmap::DashMap;
use protoactor::Pid;

use crate::proto::ClusterIdentity;

/// Cached grain PIDs by cluster identity.
#[derive(Default)]
pub struct PidCache {
    map: DashMap<ClusterIdentity, Pid>,
}

impl PidCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }
    /// The cached PID of `ci`.
    pub fn get(&self, ci: &ClusterIdentity) -> Option<Pid> {
        self.map.get(ci).map(|p| p.value().clone())
    }
    /// Caches `pid` for `ci`.
    pub fn set(&self, ci: ClusterIdentity, pid: Pid) {
        self.map.insert(ci, pid);
    }
    /// Evicts `ci` if it still maps to `pid` (a newer activation is kept).
    pub fn remove_if(&self, ci: &ClusterIdentity, pid: &Pid) -> bool {
        self.map.remove_if(ci, |_, cached| cached == pid).is_some()
    }
    /// Evicts every PID at `address` (a member left); returns how many.
    pub fn remove_by_member(&self, address: &str) -> usize {
        // Counted in the closure: entries added concurrently would make a len() difference wrong.
        let mut removed = 0;
        self.map.retain(|_, pid| {
            let keep = pid.address() != address;
            removed += usize::from(!keep);
            keep
        });
        removed
    }
    /// Evicts `pid` wherever it is cached (its activation terminated).
    pub fn remove_by_pid(&self, pid: &Pid) -> usize {
        let mut removed = 0;
        self.map.retain(|_, cached| {
            let keep = cached != pid;
            removed += usize::from(!keep);
            keep
        });
        removed
    }
    /// Keeps only the entries for which `keep` is true; returns how many were evicted.
    pub fn retain(&self, mut keep: impl FnMut(&ClusterIdentity, &Pid) -> bool) -> usize {
        let mut removed = 0;
        self.map.retain(|ci, pid| {
            let k = keep(ci, pid);
            removed += usize::from(!k);
            k
        });
        removed
    }
    /// The number of cached PIDs.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_that_go_would_confuse_are_distinct() {
        let c = PidCache::new();
        // Go's key "a.b" + "." + "c" == "a" + "." + "b.c".
        c.set(ClusterIdentity::new("a.b", "c"), Pid::new("h:1", "x"));
        c.set(ClusterIdentity::new("a", "b.c"), Pid::new("h:1", "y"));
        assert_eq!(c.get(&ClusterIdentity::new("a.b", "c")).unwrap().id(), "x");
        assert_eq!(c.get(&ClusterIdentity::new("a", "b.c")).unwrap().id(), "y");
    }

    #[test]
    fn evictions() {
        let c = PidCache::new();
        let (a, b) = (Pid::new("h:1", "a"), Pid::new("h:2", "b"));
        c.set(ClusterIdentity::new("1", "k"), a.clone());
        c.set(ClusterIdentity::new("2", "k"), b.clone());
        c.set(ClusterIdentity::new("3", "k"), b.clone());
        assert!(
            !c.remove_if(&ClusterIdentity::new("1", "k"), &b),
            "another PID is kept"
        );
        assert_eq!(c.remove_by_member("h:2"), 2);
        assert_eq!(c.len(), 1);
        assert_eq!(c.remove_by_pid(&a), 1);
        assert!(c.is_empty());
    }
}
