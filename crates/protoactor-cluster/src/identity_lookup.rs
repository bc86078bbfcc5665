//! Identity lookup: how a node finds (and causes) the activation of a grain. The only
//! lookup of the Go cluster is disthash ([`crate::DistHashIdentityLookup`]).
//!
//! A lookup sees the cluster through a [`LookupContext`]: the actor system, this node's
//! address and hosted kinds, the member list, and the registry of the local activations
//! (which grains read their identity from); not the whole cluster.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::DashMap;
use protoactor::{ActorSystem, Pid};

use crate::error::ClusterError;
use crate::kind::Kind;
use crate::member_list::MemberList;
use crate::proto::ClusterIdentity;

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
    address: String,
    member_list: MemberList,
    kinds: HashMap<String, Kind>,
    timings: PlacementTimings,
    /// The local activations by PID id, readable by the grains themselves.
    activations: DashMap<String, ClusterIdentity>,
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
    /// The context of the node at `address` on `system` hosting `kinds` (by name), with the
    /// placement's `timings`.
    pub(crate) fn new(
        system: ActorSystem,
        address: String,
        member_list: MemberList,
        kinds: HashMap<String, Kind>,
        timings: PlacementTimings,
    ) -> Self {
        LookupContext(Arc::new(LookupInner {
            system,
            address,
            member_list,
            kinds,
            timings,
            activations: DashMap::new(),
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
    /// This node's address (`host:port`).
    pub fn address(&self) -> &str {
        &self.0.address
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
    /// grain reads its identity from `Started` on).
    pub fn register_activation(&self, pid_id: &str, ci: ClusterIdentity) {
        self.0.activations.insert(pid_id.to_string(), ci);
    }
    /// Forgets the local activation whose PID id is `pid_id`.
    pub fn unregister_activation(&self, pid_id: &str) {
        self.0.activations.remove(pid_id);
    }
    /// The cluster identity of the local activation whose PID id is `pid_id`.
    pub fn activation(&self, pid_id: &str) -> Option<ClusterIdentity> {
        self.0.activations.get(pid_id).map(|c| c.value().clone())
    }
    /// How many activations of each kind this node hosts (every hosted kind, 0 included).
    pub fn activation_counts(&self) -> HashMap<String, i64> {
        let mut counts: HashMap<String, i64> =
            self.0.kinds.keys().map(|k| (k.clone(), 0)).collect();
        for a in self.0.activations.iter() {
            *counts.entry(a.value().kind.clone()).or_default() += 1;
        }
        counts
    }
}
