//! Identity lookup: how a node finds (and causes) the activation of a grain. The only
//! lookup of the Go cluster is disthash ([`crate::DistHashIdentityLookup`]).
//!
//! A lookup sees the cluster through a [`LookupContext`]: the actor system, this node's
//! address and hosted kinds, the member list, and the registry of the local activations
//! (which grains read their identity from); not the whole cluster.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use protoactor::{ActorSystem, Pid};

use crate::error::ClusterError;
use crate::identity::{identity_in_pid_id, GrainKey, IdentityPid};
use crate::kind::Kind;
use crate::member_list::MemberList;
use crate::pid_cache::PidCache;
use crate::proto::ClusterIdentity;

/// foldhash, seeded per process, as the PID cache's tables.
type Hasher = foldhash::fast::RandomState;

/// The future of one lookup attempt.
pub type LookupFuture = Pin<Box<dyn Future<Output = Result<Pid, ClusterError>> + Send>>;
/// The future of a lookup's shutdown.
pub type ShutdownFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Locates grains. The cluster calls `setup` once at start, `get` for each cache miss (and
/// retries errors until the request's deadline), and `shutdown` once.
pub trait IdentityLookup: Send + Sync + 'static {
    /// Starts the lookup's actors (`client`: this node hosts no kinds).
    fn setup(&self, ctx: &LookupContext, client: bool) -> Result<(), ClusterError>;
    /// One attempt to find or activate `ci`, waiting at most `timeout`.
    fn get(&self, ctx: &LookupContext, ci: &ClusterIdentity, timeout: Duration) -> LookupFuture;
    /// Stops the lookup; `graceful`: stop the local activations and wait for them. Not
    /// graceful: everything is stopped before this returns (the future may be dropped).
    fn shutdown(&self, ctx: &LookupContext, graceful: bool) -> ShutdownFuture;
}

/// What an identity lookup gets from the cluster node it serves. Cheap to clone (shared);
/// actors and event handlers keep a [`WeakLookupContext`], so they do not keep the node
/// alive.
#[derive(Clone)]
pub struct LookupContext(Arc<LookupInner>);

/// The timings of a lookup's placement (from the cluster config).
#[derive(Debug, Clone, Copy)]
pub struct PlacementTimings {
    /// The longest a graceful shutdown waits for the local grains to stop.
    pub shutdown_timeout: Duration,
    /// How often the activations are re-checked against the topology.
    pub check_interval: Duration,
    /// The longest an activation request waits for this node's view to catch up.
    pub stale_view_wait: Duration,
    /// The longest a member that just joined waits for a former owner's release.
    pub handoff_timeout: Duration,
}

struct LookupInner {
    system: ActorSystem,
    cluster_name: String,
    address: String,
    member_list: MemberList,
    kinds: HashMap<String, Kind>,
    timings: PlacementTimings,
    /// The local activations by identity, the one table of them (the placement actor's
    /// too), one table per hosted kind: each entry is the grain's PID alone (shared with
    /// the core, 8 bytes); the identity is read from the PID's id and the kind is the
    /// table's, so no copy of either is kept. Found by PID id too: the id names the
    /// identity, and the kinds hosted are few.
    activations: HashMap<String, DashMap<IdentityPid, (), Hasher>>,
    /// The local activations whose PID does not carry their identity, or of a kind not
    /// hosted here (none from this crate's placement actors), by identity.
    odd: PidCache,
    /// Activations registered by PID id and not moved to `activations` yet: registered
    /// before their spawn (so the grain reads its identity from `Started` on), or whose PID
    /// does not carry its identity. A reader looks here first: an entry moves by being
    /// inserted there before it is removed here.
    by_id: DashMap<Box<str>, Arc<ClusterIdentity>>,
    /// Live activations per hosted kind (read every gossip round: no scan of the map).
    counts: HashMap<String, AtomicI64>,
}

/// A [`LookupContext`] that does not keep the node alive.
#[derive(Clone)]
pub struct WeakLookupContext(Weak<LookupInner>);

impl WeakLookupContext {
    /// The context, while its node lives.
    pub fn upgrade(&self) -> Option<LookupContext> {
        self.0.upgrade().map(LookupContext)
    }
}

impl LookupContext {
    /// The context of the node at `address` of cluster `cluster_name` on `system` hosting
    /// `kinds` (by name), with the placement's `timings`.
    pub(crate) fn new(
        system: ActorSystem,
        cluster_name: String,
        address: String,
        member_list: MemberList,
        kinds: HashMap<String, Kind>,
        timings: PlacementTimings,
    ) -> Self {
        let counts = kinds
            .keys()
            .map(|k| (k.clone(), AtomicI64::new(0)))
            .collect();
        let activations = kinds
            .keys()
            .map(|k| (k.clone(), DashMap::default()))
            .collect();

        LookupContext(Arc::new(LookupInner {
            system,
            cluster_name,
            address,
            member_list,
            kinds,
            timings,
            activations,
            odd: PidCache::new(),
            by_id: DashMap::new(),
            counts,
        }))
    }
    /// A handle that does not keep the node alive.
    pub fn downgrade(&self) -> WeakLookupContext {
        WeakLookupContext(Arc::downgrade(&self.0))
    }
    /// The actor system.
    pub fn system(&self) -> &ActorSystem {
        &self.0.system
    }
    /// The cluster's name.
    pub fn cluster_name(&self) -> &str {
        &self.0.cluster_name
    }
    /// This node's address (`host:port`).
    pub fn address(&self) -> &str {
        &self.0.address
    }
    /// True if this node hosts at least one kind.
    pub fn hosts_kinds(&self) -> bool {
        !self.0.kinds.is_empty()
    }
    /// The member list (current topology and owners).
    pub fn member_list(&self) -> &MemberList {
        &self.0.member_list
    }
    /// The kind `name`, if this node hosts it.
    pub fn kind(&self, name: &str) -> Option<&Kind> {
        self.0.kinds.get(name)
    }
    /// The longest a graceful shutdown waits for the local grains to stop.
    pub fn shutdown_timeout(&self) -> Duration {
        self.0.timings.shutdown_timeout
    }
    /// The placement's timings.
    pub fn timings(&self) -> &PlacementTimings {
        &self.0.timings
    }
    /// Records the local activation whose PID id is `pid_id` (before it is spawned, so the
    /// grain reads its identity from `Started` on); once spawned, [`activation_spawned`]
    /// keeps it in a compact form.
    ///
    /// [`activation_spawned`]: Self::activation_spawned
    pub fn register_activation(&self, pid_id: &str, ci: Arc<ClusterIdentity>) {
        let kind = ci.kind.clone();
        if self.find_by_id(pid_id).is_some() {
            return;
        }
        if self.0.by_id.insert(pid_id.into(), ci).is_none() {
            self.count(&kind, 1);
        }
    }
    /// The activation registered under `pid.id()` was spawned as `pid`: it joins the table
    /// by identity ([`activation_pid`](Self::activation_pid)), and leaves the one by id if
    /// its PID's id carries its identity.
    pub fn activation_spawned(&self, pid: &Pid) {
        let Some(ci) = self.0.by_id.get(pid.id()).map(|c| c.value().clone()) else {
            return;
        };
        let table = self
            .0
            .activations
            .get(&ci.kind)
            .filter(|_| identity_in_pid_id(pid.id()) == Some(ci.identity.as_str()));
        // Inserted before it is removed from `by_id`, which readers look at first.
        match table.map(|t| (t, IdentityPid::new(pid.clone()))) {
            Some((table, Ok(key))) => {
                // The key is the identity: an older activation's PID there is replaced.
                match table.entry(key) {
                    Entry::Occupied(e) => {
                        e.replace_entry(());
                    }
                    Entry::Vacant(e) => {
                        e.insert(());
                    }
                }
                self.0.odd.remove_where(&*ci, |_| true);
                self.0.by_id.remove(pid.id());
            }
            _ => {
                self.remove_spawned(&*ci, |_| true);
                self.0.odd.set(Arc::unwrap_or_clone(ci), pid.clone());
            }
        }
    }
    /// The PID of the spawned local activation of `ci`.
    pub fn activation_pid(&self, ci: &ClusterIdentity) -> Option<Pid> {
        let hosted = self.0.activations.get(&ci.kind);
        if let Some(e) = hosted.and_then(|t| t.get(ci.identity.as_str())) {
            return Some(e.key().pid().clone());
        }
        self.0.odd.get(ci)
    }
    /// Calls `f(kind, identity, pid)` for each spawned local activation.
    pub fn for_each_activation(&self, mut f: impl FnMut(&str, &str, &Pid)) {
        for (kind, table) in &self.0.activations {
            for e in table.iter() {
                f(kind, e.key().identity(), e.key().pid());
            }
        }
        self.0.odd.for_each(f)
    }
    /// Forgets the spawned activation of `ci` if `f` is true of its PID; returns the PID.
    fn remove_spawned(&self, ci: &dyn GrainKey, f: impl Fn(&Pid) -> bool) -> Option<Pid> {
        let hosted = self.0.activations.get(ci.kind());
        if let Some((key, ())) = hosted.and_then(|t| t.remove_if(ci.identity(), |k, ()| f(k.pid())))
        {
            return Some(key.pid().clone());
        }
        self.0.odd.remove_where(ci, f)
    }
    /// The hosted kind under which the table by identity holds the activation `pid_id`.
    fn find_by_id<'a>(&'a self, pid_id: &'a str) -> Option<(&'a str, &'a str)> {
        let identity = identity_in_pid_id(pid_id)?;
        self.0.activations.iter().find_map(|(k, table)| {
            table
                .get(identity)
                .is_some_and(|e| e.key().pid().id() == pid_id)
                .then_some((k.as_str(), identity))
        })
    }
    /// Forgets the local activation whose PID id is `pid_id`, and returns its identity.
    pub fn unregister_activation(&self, pid_id: &str) -> Option<ClusterIdentity> {
        let ci = match self.0.by_id.remove(pid_id) {
            Some((_, ci)) => {
                self.remove_spawned(&*ci, |p| p.id() == pid_id);
                Arc::unwrap_or_clone(ci)
            }
            None => {
                let key = self.find_by_id(pid_id)?;
                self.remove_spawned(&key, |p| p.id() == pid_id)?;
                ClusterIdentity::new(key.identity(), key.kind())
            }
        };
        self.count(&ci.kind, -1);
        Some(ci)
    }
    fn count(&self, kind: &str, delta: i64) {
        if let Some(c) = self.0.counts.get(kind) {
            c.fetch_add(delta, Ordering::Relaxed);
        }
    }
    /// The cluster identity of the local activation whose PID id is `pid_id`.
    pub fn activation(&self, pid_id: &str) -> Option<ClusterIdentity> {
        if let Some(c) = self.0.by_id.get(pid_id) {
            return Some((**c.value()).clone());
        }
        let (kind, identity) = self.find_by_id(pid_id)?;
        Some(ClusterIdentity::new(identity, kind))
    }
    /// This node's activations (of `kind`, if given) with their PID ids, sorted by kind then
    /// identity.
    pub fn activations(&self, kind: Option<&str>) -> Vec<(ClusterIdentity, String)> {
        let mut out: Vec<(ClusterIdentity, String)> = Vec::new();
        self.for_each_activation(|k, identity, pid| {
            if kind.is_none_or(|want| want == k) {
                out.push((ClusterIdentity::new(identity, k), pid.id().to_string()));
            }
        });
        for a in self.0.by_id.iter() {
            let spawned = self
                .activation_pid(a.value())
                .is_some_and(|p| p.id() == &**a.key());
            if !spawned && kind.is_none_or(|want| a.value().kind == want) {
                out.push(((**a.value()).clone(), a.key().to_string()));
            }
        }
        out.sort_by(|a, b| (&a.0.kind, &a.0.identity).cmp(&(&b.0.kind, &b.0.identity)));
        out
    }
    /// How many activations of each kind this node hosts (every hosted kind, 0 included).
    pub fn activation_counts(&self) -> HashMap<String, i64> {
        self.0
            .counts
            .iter()
            .map(|(k, c)| (k.clone(), c.load(Ordering::Relaxed)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protoactor::Props;

    fn node(system: &ActorSystem) -> LookupContext {
        let kinds = ["a", "b"]
            .map(|k| (k.to_string(), Kind::new(k, Props::from_func(|_| {}))))
            .into_iter()
            .collect();
        let d = Duration::from_secs(1);
        LookupContext::new(
            system.clone(),
            "c".into(),
            "h:1".into(),
            MemberList::new(system, "m"),
            kinds,
            PlacementTimings {
                shutdown_timeout: d,
                check_interval: d,
                stale_view_wait: d,
                handoff_timeout: d,
            },
        )
    }

    /// The grain reads its identity by its PID id before its spawn returns, while it is
    /// kept, and not after; the counts follow, and a PID whose id does not carry its
    /// identity is found all the same.
    #[test]
    fn activations_are_found_by_pid_id_and_by_identity() {
        let system = ActorSystem::new();
        let node = node(&system);
        let (x, y) = (
            ClusterIdentity::new("u/1", "a"),
            ClusterIdentity::new("u/1", "b"),
        );
        let (px, py) = (
            Pid::new("h:1", "partition-activator/u/1$1"),
            Pid::new("h:1", "partition-activator/u/1$2"),
        );
        node.register_activation(px.id(), Arc::new(x.clone()));
        assert_eq!(
            node.activation(px.id()),
            Some(x.clone()),
            "before the spawn"
        );
        assert_eq!(node.activation_pid(&x), None, "not spawned yet");
        node.activation_spawned(&px);
        node.register_activation(py.id(), Arc::new(y.clone()));
        node.activation_spawned(&py);
        assert!(node.0.by_id.is_empty(), "kept as their PIDs alone");
        assert_eq!(node.activation(px.id()), Some(x.clone()));
        assert_eq!(node.activation(py.id()), Some(y.clone()));
        assert_eq!(node.activation_pid(&y), Some(py.clone()));
        assert_eq!(node.activation("partition-activator/u/1$3"), None);
        assert_eq!(node.activation_counts()["a"], 1);
        assert_eq!(
            node.activations(None),
            vec![
                (x.clone(), px.id().to_string()),
                (y.clone(), py.id().to_string())
            ]
        );

        // An id that does not carry the identity.
        let (z, pz) = (ClusterIdentity::new("z", "a"), Pid::new("h:1", "elsewhere"));
        node.register_activation(pz.id(), Arc::new(z.clone()));
        node.activation_spawned(&pz);
        assert_eq!(node.activation(pz.id()), Some(z.clone()));
        assert_eq!(node.activation_pid(&z), Some(pz.clone()));
        assert_eq!(node.activations(Some("a")).len(), 2);
        assert_eq!(node.activation_counts()["a"], 2);

        assert_eq!(node.unregister_activation(px.id()), Some(x.clone()));
        assert_eq!(node.unregister_activation(px.id()), None);
        assert_eq!(node.unregister_activation(pz.id()), Some(z.clone()));
        assert_eq!(node.activation(px.id()), None);
        assert_eq!(node.activation_pid(&z), None);
        assert_eq!(node.activation(py.id()), Some(y));
        assert_eq!(node.activation_counts()["a"], 0);
        assert_eq!(node.activation_counts()["b"], 1);
        system.shutdown();
    }

    /// A newer activation of an identity replaces the older one's PID in the table (one
    /// entry per identity), and the older one's end does not forget the newer one.
    #[test]
    fn a_newer_activation_replaces_the_older_and_outlives_its_end() {
        let system = ActorSystem::new();
        let node = node(&system);
        let x = ClusterIdentity::new("u", "a");
        let (old, new) = (
            Pid::new("h:1", "partition-activator/u$1"),
            Pid::new("h:1", "partition-activator/u$2"),
        );
        for p in [&old, &new] {
            node.register_activation(p.id(), Arc::new(x.clone()));
            node.activation_spawned(p);
        }
        assert_eq!(node.activation_pid(&x), Some(new.clone()));
        assert_eq!(
            node.activations(None),
            vec![(x.clone(), new.id().to_string())]
        );
        assert_eq!(
            node.activation(old.id()),
            None,
            "the old one is no longer found"
        );
        assert_eq!(node.unregister_activation(old.id()), None);
        assert_eq!(node.activation_pid(&x), Some(new.clone()));
        assert_eq!(node.activation(new.id()), Some(x.clone()));
        let mut seen = Vec::new();
        node.for_each_activation(|k, i, p| seen.push((k.to_string(), i.to_string(), p.clone())));
        assert_eq!(seen, [("a".to_string(), "u".to_string(), new.clone())]);
        assert_eq!(node.unregister_activation(new.id()), Some(x.clone()));
        assert_eq!(node.activation_pid(&x), None);
        system.shutdown();
    }
}
