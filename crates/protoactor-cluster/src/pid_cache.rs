//! The PID cache: where each grain was last found, so a call needs no activation round trip.
//!
//! Keyed by the whole [`ClusterIdentity`] (Go's `identity + "." + kind` string key is
//! ambiguous). Entries are evicted when a call to the PID fails (dead letter or timeout),
//! when a new topology makes another member the owner of the identity (its member left, or
//! a joining member took the identity over), and when an `ActivationTerminated` for it
//! arrives at this node's `eventstream` (Go broadcasts these but never uses them).

use std::sync::Arc;

use dashmap::DashMap;
use protoactor::Pid;

use crate::proto::ClusterIdentity;

/// Cached grain PIDs by cluster identity, indexed by PID as well, so evicting a terminated
/// activation costs O(1) whatever the size of the cache (a scan per `ActivationTerminated`
/// made a topology change that stops tens of thousands of grains quadratic).
#[derive(Default)]
pub struct PidCache {
    /// The identity is shared with `by_pid` (one allocation per entry).
    map: DashMap<Arc<ClusterIdentity>, Pid>,
    /// The reverse of `map`. Written after `map` on insert and before it on removal; an entry
    /// here whose identity no longer maps to the PID is stale and ignored.
    by_pid: DashMap<Pid, Arc<ClusterIdentity>>,
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
        let ci = Arc::new(ci);
        if let Some(old) = self.map.insert(ci.clone(), pid.clone()) {
            if old != pid {
                self.by_pid.remove_if(&old, |_, c| *c == ci);
            }
        }
        self.by_pid.insert(pid, ci);
    }
    /// Evicts `ci` if it still maps to `pid` (a newer activation is kept).
    pub fn remove_if(&self, ci: &ClusterIdentity, pid: &Pid) -> bool {
        let removed = self.map.remove_if(ci, |_, cached| cached == pid).is_some();
        if removed {
            self.by_pid.remove_if(pid, |_, c| **c == *ci);
        }
        removed
    }
    /// Evicts every PID at `address` (a member left); returns how many.
    pub fn remove_by_member(&self, address: &str) -> usize {
        self.retain(|_, pid| pid.address() != address)
    }
    /// Evicts `pid` wherever it is cached (its activation terminated). O(1).
    pub fn remove_by_pid(&self, pid: &Pid) -> usize {
        match self.by_pid.remove(pid) {
            Some((_, ci)) => usize::from(self.map.remove_if(&*ci, |_, c| c == pid).is_some()),
            None => 0,
        }
    }
    /// Keeps only the entries for which `keep` is true; returns how many were evicted.
    pub fn retain(&self, mut keep: impl FnMut(&ClusterIdentity, &Pid) -> bool) -> usize {
        let mut evicted = Vec::new();
        self.map.retain(|ci, pid| {
            let k = keep(ci, pid);
            if !k {
                evicted.push((ci.clone(), pid.clone()));
            }
            k
        });
        for (ci, pid) in &evicted {
            self.by_pid.remove_if(pid, |_, c| c == ci);
        }
        evicted.len()
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
        assert!(c.by_pid.is_empty(), "the PID index follows");
    }

    #[test]
    fn the_pid_index_follows_replacements() {
        let c = PidCache::new();
        let ci = ClusterIdentity::new("1", "k");
        let (a, b) = (Pid::new("h:1", "a"), Pid::new("h:1", "b"));
        c.set(ci.clone(), a.clone());
        c.set(ci.clone(), b.clone());
        // The old activation's termination does not evict the new one.
        assert_eq!(c.remove_by_pid(&a), 0);
        assert_eq!(c.get(&ci), Some(b.clone()));
        assert_eq!(c.by_pid.len(), 1);
        assert!(c.remove_if(&ci, &b));
        assert!(c.by_pid.is_empty());
        // Many entries: each eviction finds its entry directly.
        for i in 0..10_000 {
            c.set(
                ClusterIdentity::new(i.to_string(), "k"),
                Pid::new("h:1", format!("p{i}")),
            );
        }
        for i in 0..10_000 {
            assert_eq!(c.remove_by_pid(&Pid::new("h:1", format!("p{i}"))), 1);
        }
        assert!(c.is_empty() && c.by_pid.is_empty());
    }
}
