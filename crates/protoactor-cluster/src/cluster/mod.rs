//! The cluster: start a member or a client, call grains ([`call`]), shut down. The façade on
//! top of the crate: it builds the member list, the identity lookup's [`LookupContext`], the
//! gossip and the provider's [`ProviderContext`], and hands each only what it needs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use protoactor::{ActorSystem, Pid, Subscription};
use protoactor_remote::{Remote, Serialization};

pub mod call;

pub use crate::error::ClusterError;
pub(crate) use call::block_on;
pub use call::CallOptions;

use crate::config::ClusterConfig;
use crate::gossip::{GossipConfig, Gossiper};
use crate::identity_lookup::{LookupContext, PlacementTimings};
use crate::kind::Kind;
use crate::latency::RequestLatencies;
use crate::member::split_address;
use crate::member_list::MemberList;
use crate::pid_cache::PidCache;
use crate::proto::{self, ActivationTerminated, ClusterIdentity, ClusterTopology, Member};
use crate::provider::ProviderContext;

struct ClusterInner {
    config: ClusterConfig,
    remote: Arc<Remote>,
    self_member: Member,
    client: bool,
    /// The system, address, member list, kinds and activations, as the lookup sees them.
    node: LookupContext,
    pid_cache: PidCache,
    latencies: RequestLatencies,
    subscriptions: Mutex<Vec<Subscription>>,
    gossip: Mutex<Option<Pid>>,
    /// Shared with the provider's context, which ends its tasks once it is set.
    shut_down: Arc<AtomicBool>,
}

/// A node of a cluster (a member hosting kinds, or a client). Cheap to clone (shared).
///
/// Start it after [`Remote::start`] (use [`WireVariant::Legacy2024`] to talk to
/// protoactor-go); the cluster registers its own message types on the remote's registry.
///
/// [`WireVariant::Legacy2024`]: protoactor_remote::WireVariant::Legacy2024
#[derive(Clone)]
pub struct Cluster(Arc<ClusterInner>);

/// A cluster handle that does not keep it alive (for event handlers).
#[derive(Clone)]
pub(crate) struct WeakCluster(Weak<ClusterInner>);

impl WeakCluster {
    pub(crate) fn upgrade(&self) -> Option<Cluster> {
        self.0.upgrade().map(Cluster)
    }
}

/// Registers the `cluster.*` messages that cross the wire on `serialization`: the ones a Go
/// member of the 2024 module knows, and only those (never `cluster.GossipMap`).
pub fn register_cluster_types(serialization: &Serialization) {
    serialization.register::<proto::ActivationRequest>();
    serialization.register::<proto::ActivationResponse>();
    serialization.register::<proto::ActivationTerminated>();
    serialization.register::<proto::ClusterIdentity>();
    serialization.register::<proto::ClusterTopology>();
    serialization.register::<proto::Member>();
    serialization.register::<proto::MemberHeartbeat>();
    serialization.register::<proto::ActorStatistics>();
    serialization.register::<proto::GossipRequest>();
    serialization.register::<proto::GossipResponse>();
    serialization.register::<proto::GossipState>();
    serialization.register::<proto::GossipMemberState>();
    serialization.register::<proto::GossipKeyValue>();
    serialization.register::<proto::GrainRequest>();
    serialization.register::<proto::GrainErrorResponse>();
}

impl Cluster {
    /// Starts a member hosting `config.kinds`: registers the cluster messages, spawns
    /// `partition-activator` and `gossip`, then starts the provider. Returns at once; the
    /// first topology comes from the provider (wait for it with
    /// `cluster.member_list().wait_until(..)` if needed; requests wait for an owner anyway).
    pub fn start_member(
        system: &ActorSystem,
        remote: &Arc<Remote>,
        config: ClusterConfig,
    ) -> Result<Cluster, ClusterError> {
        Self::start(system, remote, config, false)
    }

    /// Starts a client: it calls grains but hosts none, is not registered and does not
    /// gossip (its `partition-activator` answers `failed` to every activation request).
    pub fn start_client(
        system: &ActorSystem,
        remote: &Arc<Remote>,
        config: ClusterConfig,
    ) -> Result<Cluster, ClusterError> {
        Self::start(system, remote, config, true)
    }

    fn start(
        system: &ActorSystem,
        remote: &Arc<Remote>,
        config: ClusterConfig,
        client: bool,
    ) -> Result<Cluster, ClusterError> {
        if system.is_shut_down() {
            return Err(ClusterError::ShutDown);
        }
        // A cluster that was shut down (or failed to start) may be replaced.
        if system
            .extension::<Cluster>()
            .is_some_and(|c| !c.is_shut_down())
        {
            return Err(ClusterError::AlreadyStarted);
        }
        #[cfg(feature = "tls")]
        if config.member_signatures {
            if config.gossip_secret.is_some() {
                return Err(ClusterError::MemberSignatures(
                    "not together with a gossip secret".into(),
                ));
            }
            if !remote.bind_peer_addresses() {
                return Err(ClusterError::MemberSignatures(
                    "the remote does not use mutual TLS".into(),
                ));
            }
        }
        let mut kinds = HashMap::new();
        if !client {
            let service_kinds = config.services.iter().flat_map(|s| s.kinds());
            for k in config.kinds.iter().cloned().chain(service_kinds) {
                k.validate()?;
                let name = k.name().to_string();
                if kinds.insert(name.clone(), k).is_some() {
                    return Err(ClusterError::DuplicateKind(name));
                }
            }
        }
        let address = remote.address().to_string();
        let (host, port) =
            split_address(&address).ok_or_else(|| ClusterError::InvalidAddress(address.clone()))?;
        let mut kind_names: Vec<&String> = kinds.keys().collect();
        kind_names.sort();
        // The provider decides the id format (etcd: `<cluster>@<system id>`, as Go).
        let member_id = config.provider.member_id(&config.name, system.id());
        let self_member = Member::new(host, port, member_id.clone(), kind_names);
        register_cluster_types(remote.serialization());
        // A peer may not inject this node's local events: the topology comes only from the
        // local member list, and the event stream takes only what members broadcast.
        remote.refuse_remote_types([<proto::ClusterTopology as prost::Name>::full_name()]);
        remote.allow_remote_events([<proto::ActivationTerminated as prost::Name>::full_name()]);
        let node = LookupContext::new(
            system.clone(),
            config.name.clone(),
            address,
            MemberList::new(system, member_id),
            kinds,
            PlacementTimings {
                shutdown_timeout: config.shutdown_timeout,
                check_interval: config.placement_check_interval,
                stale_view_wait: config.stale_view_wait,
                handoff_timeout: config.handoff_timeout,
            },
        );
        let cluster = Cluster(Arc::new(ClusterInner {
            remote: remote.clone(),
            self_member,
            client,
            node,
            pid_cache: PidCache::new(),
            latencies: RequestLatencies::new(system),
            subscriptions: Mutex::new(Vec::new()),
            gossip: Mutex::new(None),
            shut_down: Arc::new(AtomicBool::new(false)),
            config,
        }));
        system.set_extension(Arc::new(cluster.clone()));
        cluster.subscribe_events();
        if let Err(e) = cluster.start_components(client) {
            cluster.abort();
            return Err(e);
        }
        tracing::info!(
            cluster = %cluster.name(),
            address = %cluster.address(),
            id = %cluster.self_member().id,
            client,
            "cluster started"
        );
        Ok(cluster)
    }

    fn start_components(&self, client: bool) -> Result<(), ClusterError> {
        self.0.config.identity_lookup.setup(&self.0.node, client)?;
        for s in &self.0.config.services {
            s.start(self.system(), &self.0.remote, client)?;
        }
        if !client {
            *self.0.gossip.lock() = Some(self.start_gossip()?);
        }
        let ctx = ProviderContext::new(
            self.name(),
            self.0.self_member.clone(),
            self.system().clone(),
            self.member_list().clone(),
            self.0.shut_down.clone(),
        );
        if client {
            self.0.config.provider.start_client(ctx)
        } else {
            self.0.config.provider.start_member(ctx)
        }
    }

    /// Undoes a failed start.
    fn abort(&self) {
        self.0.shut_down.store(true, Ordering::Release);
        self.unsubscribe_events();
        // Not graceful: the lookup unsubscribes and stops its actor before returning.
        drop(self.0.config.identity_lookup.shutdown(&self.0.node, false));
        if self.0.gossip.lock().is_some() {
            let c = self.clone();
            self.system()
                .runtime()
                .spawn(async move { c.stop_gossip() });
        }
    }

    /// PID caches follow the topology and the activations that end anywhere in the cluster.
    fn subscribe_events(&self) {
        let es = self.system().event_stream();
        let weak = self.downgrade();
        let moved = es.subscribe_to::<ClusterTopology, _>(move |_| {
            if let Some(c) = weak.upgrade() {
                // A cached PID is kept only while its member still owns the identity: after a
                // member left or joined, calls go to the new owner at once instead of to an
                // activation the old owner is about to stop (Go's PID cache keeps it).
                let topology = c.member_list().topology();
                c.0.pid_cache.retain(|kind, identity, pid| {
                    topology.owner(kind, identity) == Some(pid.address())
                });
            }
        });
        let weak = self.downgrade();
        let terminated = es.subscribe_to::<ActivationTerminated, _>(move |t| {
            if let (Some(c), Some(pid), Some(ci)) = (weak.upgrade(), &t.pid, &t.cluster_identity) {
                c.0.pid_cache.remove_if(ci, &pid.to_pid());
            }
        });
        self.0.subscriptions.lock().extend([moved, terminated]);
    }

    fn unsubscribe_events(&self) {
        for s in self.0.subscriptions.lock().drain(..) {
            self.system().event_stream().unsubscribe(&s);
        }
    }

    /// The cluster started on `system`, if any.
    pub fn from_system(system: &ActorSystem) -> Option<Cluster> {
        system.extension::<Cluster>().map(|c| Cluster::clone(&c))
    }

    pub(crate) fn downgrade(&self) -> WeakCluster {
        WeakCluster(Arc::downgrade(&self.0))
    }

    /// The cluster name.
    pub fn name(&self) -> &str {
        &self.0.config.name
    }
    /// The config.
    pub fn config(&self) -> &ClusterConfig {
        &self.0.config
    }
    /// The actor system.
    pub fn system(&self) -> &ActorSystem {
        self.0.node.system()
    }
    /// The remote.
    pub fn remote(&self) -> &Arc<Remote> {
        &self.0.remote
    }
    /// This node's address (`host:port`).
    pub fn address(&self) -> &str {
        self.0.node.address()
    }
    /// This node as a member (id = the provider's [`member_id`], usually the actor system id;
    /// kinds sorted).
    ///
    /// [`member_id`]: crate::provider::ClusterProvider::member_id
    pub fn self_member(&self) -> &Member {
        &self.0.self_member
    }
    /// True for a client.
    pub fn is_client(&self) -> bool {
        self.0.client
    }
    /// The member list (current topology, owners, blocking).
    pub fn member_list(&self) -> &MemberList {
        self.0.node.member_list()
    }
    /// The PID cache.
    pub fn pid_cache(&self) -> &PidCache {
        &self.0.pid_cache
    }
    /// The latency of this node's grain calls per kind and method (recorded while the
    /// management API runs, or after [`RequestLatencies::start_recording`]).
    pub fn request_latencies(&self) -> &RequestLatencies {
        &self.0.latencies
    }
    /// This node's activations (`kind` given: of that kind only), sorted by kind then
    /// identity, with their PID ids.
    pub fn local_activations(&self, kind: Option<&str>) -> Vec<(ClusterIdentity, String)> {
        self.0.node.activations(kind)
    }
    /// The kind `name`, if this node hosts it.
    pub fn kind(&self, name: &str) -> Option<&Kind> {
        self.0.node.kind(name)
    }
    /// Lets peers publish messages of type `M` on this node's event stream (a message sent
    /// to `<address>/eventstream`); besides `cluster.ActivationTerminated`, every other type
    /// from the network is refused there (a `RemoteDeliveryError` and a dead letter).
    pub fn allow_remote_event<M: prost::Name>(&self) {
        self.0.remote.allow_remote_events([M::full_name()]);
    }

    /// The PID of the gossip actor (members only).
    pub fn gossip_pid(&self) -> Option<Pid> {
        self.0.gossip.lock().clone()
    }
    /// True once shutdown began.
    pub fn is_shut_down(&self) -> bool {
        self.0.shut_down.load(Ordering::Acquire)
    }

    /// The cluster identity of the local activation whose PID id is `pid_id`.
    pub fn activation(&self, pid_id: &str) -> Option<ClusterIdentity> {
        self.0.node.activation(pid_id)
    }
    /// How many activations of each kind this node hosts (gossip's heartbeat statistics).
    pub fn activation_counts(&self) -> HashMap<String, i64> {
        self.0.node.activation_counts()
    }

    // ------------------------------------------------------------------ shutdown

    /// Leaves the cluster. Graceful: stop the local grains (waiting up to `shutdown_timeout`;
    /// each stop broadcasts `ActivationTerminated`), then gossip `left` (pushed to every
    /// member), deregister from the provider, stop gossip, and shut the remote down. Not
    /// graceful: no `left`, the provider registration is left to expire, the grains are
    /// stopped without waiting. The actor system itself is left running (shut it down
    /// afterwards).
    pub fn shutdown(&self, graceful: bool) -> impl Future<Output = ()> + Send + 'static {
        let c = self.clone();
        let rt = self.system().runtime().clone();
        async move {
            // Run on the system's runtime: the steps use its timers from any executor.
            let _ = rt
                .spawn(async move { c.shutdown_inner(graceful).await })
                .await;
        }
    }

    /// [`Cluster::shutdown`], blocking the calling thread.
    pub fn shutdown_blocking(&self, graceful: bool) {
        let fut = self.shutdown(graceful);
        let _ = block_on(self.system(), async move {
            fut.await;
            Ok(())
        });
    }

    async fn shutdown_inner(&self, graceful: bool) {
        if self.0.shut_down.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::info!(cluster = %self.name(), address = %self.address(), graceful, "cluster shutting down");
        // The grains stop first (their Stopping/Stopped handlers done) while this member is
        // still in everyone's topology: callers meanwhile get dead letters and wait for the
        // leave, so no other member activates an identity before its activation here ended
        // (Go leaves first and stops its grains afterwards, so the two overlap).
        self.0
            .config
            .identity_lookup
            .shutdown(&self.0.node, graceful)
            .await;
        if graceful && !self.0.client {
            self.leave_gossip().await;
        }
        if let Err(e) = self.0.config.provider.shutdown(graceful).await {
            tracing::warn!(error = %e, "cluster provider shutdown failed");
        }
        self.stop_gossip();
        self.unsubscribe_events();
        self.0.remote.shutdown();
    }

    // ------------------------------------------------------------------ gossip

    /// Spawns the gossip actor (named [`crate::gossip::GOSSIP_ACTOR_NAME`]) and starts the
    /// gossip loop. Called once by [`Cluster::start_member`] after the identity lookup, before
    /// the provider.
    fn start_gossip(&self) -> Result<Pid, ClusterError> {
        let c = self.config();
        let config = GossipConfig {
            interval: c.gossip_interval,
            request_timeout: c.gossip_request_timeout,
            fan_out: c.gossip_fan_out,
            max_send: c.gossip_max_send,
            heartbeat_expiration: c.heartbeat_expiration,
            left_block: c.block_duration,
            secret: c.gossip_secret.clone(),
            #[cfg(feature = "tls")]
            member_signatures: self.member_signatures()?,
            admission: c
                .gossip_admission
                .unwrap_or_else(|| self.0.remote.uses_mutual_tls()),
            ..GossipConfig::default()
        };
        // Weak: the gossiper lives in the system's extensions, which the cluster holds.
        let counted = self.0.node.downgrade();
        let gossiper = Gossiper::start(
            self.system(),
            self.member_list().clone(),
            config,
            Arc::new(move || {
                counted
                    .upgrade()
                    .map(|c| c.activation_counts())
                    .unwrap_or_default()
            }),
        )
        .map_err(|e| ClusterError::Spawn(e.to_string()))?;
        let pid = gossiper.pid().clone();
        self.system().set_extension(Arc::new(gossiper));
        Ok(pid)
    }

    /// The member signatures of this member, with them on: its TLS key and CA, and the
    /// provider's listing for the members' hosts.
    #[cfg(feature = "tls")]
    fn member_signatures(
        &self,
    ) -> Result<Option<Arc<crate::gossip::MemberSignatures>>, ClusterError> {
        if !self.config().member_signatures {
            return Ok(None);
        }
        let tls = self.0.remote.tls().ok_or_else(|| {
            ClusterError::MemberSignatures("the remote does not use mutual TLS".into())
        })?;
        let ml = self.member_list().clone();
        let host_of = Arc::new(move |id: &str| ml.listed_member(id).map(|m| m.host));
        crate::gossip::MemberSignatures::new(tls, host_of)
            .map(|m| Some(Arc::new(m)))
            .map_err(|e| ClusterError::MemberSignatures(e.to_string()))
    }

    /// Graceful leave: sets the `left` key and pushes it to every member, after the grains
    /// stopped and before the provider deregisters ([`Cluster::shutdown`], graceful).
    async fn leave_gossip(&self) {
        if let Some(g) = self.system().extension::<Gossiper>() {
            let missed = g.leave(LEAVE_TIMEOUT).await;
            if !missed.is_empty() {
                tracing::info!(members = ?missed, "gossip: these members did not acknowledge the leave");
            }
        }
    }

    /// Stops the gossip loop and the actor. Called by [`Cluster::shutdown`] after the grains
    /// stopped.
    fn stop_gossip(&self) {
        if let Some(g) = self.system().extension::<Gossiper>() {
            g.stop();
        }
    }
}

/// The longest a graceful leave waits for the members to acknowledge it.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name())
            .field("address", &self.address())
            .field("id", &self.0.self_member.id)
            .finish()
    }
}
