//! The PID cache: where each grain was last found, so a call needs no activation round trip.
//!
//! Keyed by the whole [`ClusterIdentity`] (Go's `identity + "." + kind` string key is
//! ambiguous). Entries are evicted when a call to the PID fails (dead letter or timeout),
//! when a new topology makes another member the owner of the identity (its member left, or
//! a joining member took the identity over), and when an `ActivationTerminated` for it
//! arrives at this node's `eventstream` (Go broadcasts these but never uses them; they name
//! the identity and the PID, so the eviction is one lookup).

use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use protoactor::Pid;

use crate::identity::{GrainKey, GrainPid, IdentityKey};
use crate::proto::ClusterIdentity;

/// Kinds kept as one shared string each; past this many, a kind is no longer shared (the
/// table stays bounded whatever kinds callers name).
const MAX_SHARED_KINDS: usize = 1024;

type Hasher = foldhash::fast::RandomState;

/// Cached grain PIDs by cluster identity. Evicting a terminated activation is O(1): its
/// `ActivationTerminated` names the identity (Go's too), so no scan and no second index (a
/// scan per `ActivationTerminated` made a topology change that stops tens of thousands of
/// grains quadratic; an index by PID cost a cached PID 60 more bytes).
///
/// A cached PID is one [`GrainPid`] (the PID and its kind's shared name): grain PIDs carry
/// their identity in their id (`partition-activator/<identity>$<n>`, as Go names them), so
/// the cache keeps no copy of it (two strings and a 48-byte key per PID before). A PID that
/// does not carry its identity is kept beside them with a copy.
#[derive(Default)]
pub struct PidCache {
    /// foldhash, seeded per process: SipHash of the identity and kind was 3 % of the CPU
    /// time of a member calling grains (`cluster` bench, perf).
    grains: DashMap<GrainPid, (), Hasher>,
    other: DashMap<IdentityKey, Pid, Hasher>,
    kinds: DashMap<Box<str>, Arc<str>, Hasher>,
}

impl PidCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }
    /// The cached PID of `ci`.
    pub fn get(&self, ci: &dyn GrainKey) -> Option<Pid> {
        if let Some(g) = self.grains.get(ci) {
            return Some(g.key().pid().clone());
        }
        if self.other.is_empty() {
            return None;
        }
        self.other.get(ci).map(|p| p.value().clone())
    }
    /// Caches `pid` for `ci`.
    pub fn set(&self, ci: ClusterIdentity, pid: Pid) {
        match GrainPid::new(&ci, self.kind(&ci.kind), pid) {
            Ok(g) => {
                // The key is the PID: an equal key already there is replaced, not kept.
                match self.grains.entry(g) {
                    Entry::Occupied(e) => {
                        e.replace_entry(());
                    }
                    Entry::Vacant(e) => {
                        e.insert(());
                    }
                }
                if !self.other.is_empty() {
                    self.other.remove(&ci as &dyn GrainKey);
                }
            }
            Err(pid) => {
                self.grains.remove(&ci as &dyn GrainKey);
                self.other.insert(IdentityKey(ci), pid);
            }
        }
    }
    /// The shared name of `kind`.
    fn kind(&self, kind: &str) -> Arc<str> {
        if let Some(k) = self.kinds.get(kind) {
            return k.value().clone();
        }
        let shared: Arc<str> = Arc::from(kind);
        if self.kinds.len() < MAX_SHARED_KINDS {
            self.kinds.insert(kind.into(), shared.clone());
        }
        shared
    }
    /// Evicts `ci` if it still maps to `pid` (a newer activation is kept). O(1).
    pub fn remove_if(&self, ci: &dyn GrainKey, pid: &Pid) -> bool {
        self.remove_where(ci, |cached| cached == pid).is_some()
    }
    /// Evicts `ci` if `f` is true of its PID; returns the PID evicted.
    pub fn remove_where(&self, ci: &dyn GrainKey, f: impl Fn(&Pid) -> bool) -> Option<Pid> {
        if let Some((g, ())) = self.grains.remove_if(ci, |g, ()| f(g.pid())) {
            return Some(g.pid().clone());
        }
        if self.other.is_empty() {
            return None;
        }
        self.other
            .remove_if(ci, |_, cached| f(cached))
            .map(|(_, p)| p)
    }
    /// Evicts every PID at `address` (a member left); returns how many.
    pub fn remove_by_member(&self, address: &str) -> usize {
        self.retain(|_, _, pid| pid.address() != address)
    }
    /// Keeps only the entries for which `keep(kind, identity, pid)` is true; returns how
    /// many were evicted.
    pub fn retain(&self, mut keep: impl FnMut(&str, &str, &Pid) -> bool) -> usize {
        let before = self.len();
        self.grains
            .retain(|g, ()| keep(g.kind(), g.identity(), g.pid()));
        self.other
            .retain(|ci, pid| keep(&ci.0.kind, &ci.0.identity, pid));
        before.saturating_sub(self.len())
    }
    /// Calls `f(kind, identity, pid)` for each entry.
    pub fn for_each(&self, mut f: impl FnMut(&str, &str, &Pid)) {
        for g in self.grains.iter() {
            let g = g.key();
            f(g.kind(), g.identity(), g.pid());
        }
        for e in self.other.iter() {
            f(&e.key().0.kind, &e.key().0.identity, e.value());
        }
    }
    /// The number of cached PIDs.
    pub fn len(&self) -> usize {
        self.grains.len() + self.other.len()
    }
    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        assert!(c.remove_if(&ClusterIdentity::new("1", "k"), &a));
        assert!(c.is_empty());
    }

    #[test]
    fn a_terminated_activation_does_not_evict_its_successor() {
        let c = PidCache::new();
        let ci = ClusterIdentity::new("1", "k");
        let (a, b) = (Pid::new("h:1", "a"), Pid::new("h:1", "b"));
        c.set(ci.clone(), a.clone());
        c.set(ci.clone(), b.clone());
        // The old activation's termination does not evict the new one.
        assert!(!c.remove_if(&ci, &a));
        assert_eq!(c.get(&ci), Some(b.clone()));
        assert!(c.remove_if(&ci, &b));
        assert!(c.is_empty());
    }

    /// The same behaviour when the PIDs carry their identities (the cache then keeps no
    /// copy of it), and when one identity's PID changes shape.
    #[test]
    fn grain_shaped_pids() {
        let c = PidCache::new();
        let g = |address: &str, identity: &str, n: u32| {
            Pid::new(address, format!("partition-activator/{identity}${n}"))
        };
        let (x, y) = (g("h:1", "a.b", 1), g("h:1", "a", 2));
        c.set(ClusterIdentity::new("a.b", "c"), x.clone());
        c.set(ClusterIdentity::new("a", "b.c"), y.clone());
        assert_eq!(c.get(&ClusterIdentity::new("a.b", "c")), Some(x.clone()));
        assert_eq!(c.get(&ClusterIdentity::new("a", "b.c")), Some(y.clone()));
        assert_eq!(c.get(&ClusterIdentity::new("a.b", "b.c")), None);
        assert!(c.other.is_empty(), "no identity copied");

        // A newer activation replaces the cached one; the old one's end does not evict it.
        let ci = ClusterIdentity::new("a.b", "c");
        let x2 = g("h:2", "a.b", 7);
        c.set(ci.clone(), x2.clone());
        assert_eq!(c.get(&ci), Some(x2.clone()));
        assert!(!c.remove_if(&ci, &x));
        assert_eq!(c.len(), 2);
        assert_eq!(c.remove_by_member("h:2"), 1);
        assert_eq!(c.get(&ci), None);

        // A PID without its identity in its id replaces a grain-shaped one, and back.
        let odd = Pid::new("h:1", "elsewhere");
        c.set(ci.clone(), odd.clone());
        assert_eq!(c.get(&ci), Some(odd.clone()));
        c.set(ci.clone(), x.clone());
        assert_eq!(c.get(&ci), Some(x.clone()));
        assert_eq!(c.len(), 2);
        let mut seen = Vec::new();
        c.retain(|kind, identity, _| {
            seen.push(format!("{kind}/{identity}"));
            kind == "c"
        });
        seen.sort();
        assert_eq!(seen, ["b.c/a", "c/a.b"]);
        assert_eq!(c.len(), 1);
        assert!(c.remove_if(&ci, &x));
        assert!(c.is_empty());
    }
}
