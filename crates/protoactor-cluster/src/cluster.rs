//! The cluster: start a member or a client, call grains, shut down.

use protoactor::ContextOps;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use parking_lot::Mutex;
use protoactor::{ActorSystem, BoxedMessage, FutureError, Message, Pid, Subscription};
use protoactor_remote::{Remote, Serialization};

use crate::config::ClusterConfig;
use crate::gossip;
use crate::kind::Kind;
use crate::member::split_address;
use crate::member_list::MemberList;
use crate::pid_cache::PidCache;
use crate::proto::{
    self, ActivationTerminated, ClusterIdentity, ClusterTopology, GrainErrorResponse, Member,
};
use crate::provider::ProviderContext;

/// Why a cluster operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterError {
    /// A cluster is already started on this actor system (or the component was started twice).
    #[error("the cluster is already started on this actor system")]
    AlreadyStarted,
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
    fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClusterError::NoOwner { .. }
                | ClusterError::ActivationFailed { .. }
                | ClusterError::DeadLetter
                | ClusterError::Timeout
        )
    }
}

/// Options of one grain call.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// The overall deadline, retries included (`None`: the config's `request_timeout`).
    pub timeout: Option<Duration>,
    /// The longest one request attempt waits for the grain's reply before the PID is evicted
    /// and the call retried (`None`: until the overall deadline). A shorter value lets a call
    /// get past an activation on a member that died without a trace.
    pub attempt_timeout: Option<Duration>,
    /// The most attempts (lookups and requests that fail with a dead letter or a timeout,
    /// or find no owner); at least 1. Default 10.
    pub max_attempts: u32,
    /// The pause after the first failed attempt; it doubles after each one, up to
    /// `max_backoff`. Default 20 ms.
    pub backoff: Duration,
    /// The longest pause between attempts. Default 500 ms.
    pub max_backoff: Duration,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            timeout: None,
            attempt_timeout: None,
            max_attempts: 10,
            backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(500),
        }
    }
}

impl CallOptions {
    /// Sets the overall deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// Sets the longest wait of one request attempt.
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }
    /// Sets the most attempts.
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
    /// Sets the first pause between attempts and the longest.
    pub fn with_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = first;
        self.max_backoff = max.max(first);
        self
    }
    fn pause(&self, failed_attempts: u32) -> Duration {
        let factor = 1u32 << failed_attempts.saturating_sub(1).min(16);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

struct ClusterInner {
    config: ClusterConfig,
    system: ActorSystem,
    remote: Arc<Remote>,
    address: String,
    self_member: Member,
    client: bool,
    kinds: HashMap<String, Kind>,
    member_list: MemberList,
    pid_cache: PidCache,
    /// The local activations by PID id, readable by the grains themselves.
    activations: DashMap<String, ClusterIdentity>,
    subscriptions: Mutex<Vec<Subscription>>,
    gossip: Mutex<Option<Pid>>,
    shut_down: AtomicBool,
}

/// A node of a cluster (a member hosting kinds, or a client). Cheap to clone (shared).
///
/// Start it after [`Remote::start`] (use [`WireVariant::Legacy2024`] to talk to
/// protoactor-go); the cluster registers its own message types on the remote's registry.
///
/// [`WireVariant::Legacy2024`]: protoactor_remote::WireVariant::Legacy2024
#[derive(Clone)]
pub struct Cluster(Arc<ClusterInner>);

/// A cluster handle that does not keep it alive (for actors and event handlers).
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
        let mut kinds = HashMap::new();
        if !client {
            for k in &config.kinds {
                k.validate()?;
                if kinds.insert(k.name().to_string(), k.clone()).is_some() {
                    return Err(ClusterError::DuplicateKind(k.name().to_string()));
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
        let cluster = Cluster(Arc::new(ClusterInner {
            system: system.clone(),
            remote: remote.clone(),
            address,
            self_member,
            client,
            kinds,
            member_list: MemberList::new(system, member_id),
            pid_cache: PidCache::new(),
            activations: DashMap::new(),
            subscriptions: Mutex::new(Vec::new()),
            gossip: Mutex::new(None),
            shut_down: AtomicBool::new(false),
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
        self.0.config.identity_lookup.setup(self, client)?;
        if !client {
            *self.0.gossip.lock() = Some(gossip::start(self)?);
        }
        let ctx = ProviderContext::new(self.clone());
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
        drop(self.0.config.identity_lookup.shutdown(self, false));
        if self.0.gossip.lock().is_some() {
            let c = self.clone();
            self.0
                .system
                .runtime()
                .spawn(async move { gossip::stop(&c).await });
        }
    }

    /// PID caches follow the topology and the activations that end anywhere in the cluster.
    fn subscribe_events(&self) {
        let es = self.0.system.event_stream();
        let weak = self.downgrade();
        let moved = es.subscribe_to::<ClusterTopology, _>(move |_| {
            if let Some(c) = weak.upgrade() {
                // A cached PID is kept only while its member still owns the identity: after a
                // member left or joined, calls go to the new owner at once instead of to an
                // activation the old owner is about to stop (Go's PID cache keeps it).
                let topology = c.0.member_list.topology();
                c.0.pid_cache.retain(|ci, pid| {
                    topology.owner(&ci.kind, &ci.identity) == Some(pid.address())
                });
            }
        });
        let weak = self.downgrade();
        let terminated = es.subscribe_to::<ActivationTerminated, _>(move |t| {
            if let (Some(c), Some(pid)) = (weak.upgrade(), &t.pid) {
                c.0.pid_cache.remove_by_pid(&pid.to_pid());
            }
        });
        self.0.subscriptions.lock().extend([moved, terminated]);
    }

    fn unsubscribe_events(&self) {
        for s in self.0.subscriptions.lock().drain(..) {
            self.0.system.event_stream().unsubscribe(&s);
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
        &self.0.system
    }
    /// The remote.
    pub fn remote(&self) -> &Arc<Remote> {
        &self.0.remote
    }
    /// This node's address (`host:port`).
    pub fn address(&self) -> &str {
        &self.0.address
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
        &self.0.member_list
    }
    /// The PID cache.
    pub fn pid_cache(&self) -> &PidCache {
        &self.0.pid_cache
    }
    /// The kind `name`, if this node hosts it.
    pub fn kind(&self, name: &str) -> Option<&Kind> {
        self.0.kinds.get(name)
    }
    /// The PID of the gossip actor (members only).
    pub fn gossip_pid(&self) -> Option<Pid> {
        self.0.gossip.lock().clone()
    }
    /// True once shutdown began.
    pub fn is_shut_down(&self) -> bool {
        self.0.shut_down.load(Ordering::Acquire)
    }

    pub(crate) fn register_activation(&self, pid_id: &str, ci: ClusterIdentity) {
        self.0.activations.insert(pid_id.to_string(), ci);
    }
    pub(crate) fn unregister_activation(&self, pid_id: &str) {
        self.0.activations.remove(pid_id);
    }
    /// The cluster identity of the local activation whose PID id is `pid_id`.
    pub fn activation(&self, pid_id: &str) -> Option<ClusterIdentity> {
        self.0.activations.get(pid_id).map(|c| c.value().clone())
    }
    /// How many activations of each kind this node hosts (gossip's heartbeat statistics).
    pub fn activation_counts(&self) -> HashMap<String, i64> {
        let mut counts: HashMap<String, i64> =
            self.0.kinds.keys().map(|k| (k.clone(), 0)).collect();
        for a in self.0.activations.iter() {
            *counts.entry(a.value().kind.clone()).or_default() += 1;
        }
        counts
    }

    // ------------------------------------------------------------------ calls

    /// The PID of grain `ci`: from the cache, or activated by its owner. Retries (with the
    /// default [`CallOptions`]) while no owner is known or the owner cannot be reached, up
    /// to the config's request timeout.
    pub fn get(
        &self,
        ci: &ClusterIdentity,
    ) -> impl Future<Output = Result<Pid, ClusterError>> + Send + 'static {
        let (c, ci) = (self.clone(), ci.clone());
        async move {
            let opts = CallOptions::default();
            let deadline = Instant::now() + c.0.config.request_timeout;
            let mut attempts = 0;
            c.resolve(&ci, deadline, &opts, &mut attempts).await
        }
    }

    /// [`Cluster::get`], blocking the calling thread.
    pub fn get_blocking(&self, ci: &ClusterIdentity) -> Result<Pid, ClusterError> {
        block_on(&self.0.system, self.get(ci))
    }

    /// Sends `msg` to grain `identity` of `kind` and waits for its reply: resolves the PID
    /// (cache or activation), sends, and on a dead letter or a timeout evicts the PID and
    /// tries again, until `opts`' attempts or deadline run out. The reply may be a
    /// [`GrainErrorResponse`]; [`Cluster::request_as`] turns that into an error.
    pub fn request<M: Message + Clone>(
        &self,
        identity: impl Into<String>,
        kind: impl Into<String>,
        msg: M,
        opts: &CallOptions,
    ) -> impl Future<Output = Result<BoxedMessage, ClusterError>> + Send + 'static {
        let (c, opts) = (self.clone(), opts.clone());
        let ci = ClusterIdentity::new(identity, kind);
        async move { c.request_inner(ci, msg, opts).await }
    }

    /// [`Cluster::request`] with the reply downcast to `R`: a [`GrainErrorResponse`] reply is
    /// `Err(ClusterError::Grain)`, another type `Err(ClusterError::UnexpectedResponse)`.
    pub fn request_as<R: Message, M: Message + Clone>(
        &self,
        identity: impl Into<String>,
        kind: impl Into<String>,
        msg: M,
        opts: &CallOptions,
    ) -> impl Future<Output = Result<R, ClusterError>> + Send + 'static {
        let fut = self.request(identity, kind, msg, opts);
        async move { downcast_reply::<R>(fut.await?) }
    }

    /// [`Cluster::request`], blocking the calling thread (from a plain thread, or from an
    /// actor of a multi-threaded runtime; inside a grain prefer `request` with
    /// `ctx.reenter_after`).
    pub fn request_blocking<M: Message + Clone>(
        &self,
        identity: impl Into<String>,
        kind: impl Into<String>,
        msg: M,
        opts: &CallOptions,
    ) -> Result<BoxedMessage, ClusterError> {
        block_on(&self.0.system, self.request(identity, kind, msg, opts))
    }

    /// [`Cluster::request_as`], blocking the calling thread.
    pub fn request_blocking_as<R: Message, M: Message + Clone>(
        &self,
        identity: impl Into<String>,
        kind: impl Into<String>,
        msg: M,
        opts: &CallOptions,
    ) -> Result<R, ClusterError> {
        block_on(
            &self.0.system,
            self.request_as::<R, M>(identity, kind, msg, opts),
        )
    }

    async fn request_inner<M: Message + Clone>(
        &self,
        ci: ClusterIdentity,
        msg: M,
        opts: CallOptions,
    ) -> Result<BoxedMessage, ClusterError> {
        let timeout = opts.timeout.unwrap_or(self.0.config.request_timeout);
        let deadline = Instant::now() + timeout;
        let mut attempts = 0u32;
        loop {
            let pid = self.resolve(&ci, deadline, &opts, &mut attempts).await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ClusterError::Timeout);
            }
            let wait = opts.attempt_timeout.map_or(remaining, |t| t.min(remaining));
            let fut = self.0.system.root().request_future(&pid, msg.clone(), wait);
            let err = match fut.await {
                Ok(reply) => return Ok(reply),
                Err(FutureError::DeadLetter) => ClusterError::DeadLetter,
                Err(FutureError::Timeout) => ClusterError::Timeout,
                Err(e) => return Err(ClusterError::Future(e)),
            };
            // The activation is gone or unreachable: forget it and find the current one.
            self.0.pid_cache.remove_if(&ci, &pid);
            attempts += 1;
            tracing::debug!(identity = %ci, %pid, error = %err, attempts, "grain request failed");
            self.pause_before_retry(&ci, err, deadline, &opts, attempts)
                .await?;
        }
    }

    /// Finds the PID of `ci`, retrying lookups that may succeed later.
    async fn resolve(
        &self,
        ci: &ClusterIdentity,
        deadline: Instant,
        opts: &CallOptions,
        attempts: &mut u32,
    ) -> Result<Pid, ClusterError> {
        loop {
            if self.is_shut_down() || self.0.system.is_shut_down() {
                return Err(ClusterError::ShutDown);
            }
            if let Some(pid) = self.0.pid_cache.get(ci) {
                return Ok(pid);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ClusterError::Timeout);
            }
            let timeout = remaining.min(self.0.config.activation_timeout);
            let err = match self.0.config.identity_lookup.get(self, ci, timeout).await {
                Ok(pid) => {
                    self.0.pid_cache.set(ci.clone(), pid.clone());
                    return Ok(pid);
                }
                Err(e) if e.is_retryable() => e,
                Err(e) => return Err(e),
            };
            *attempts += 1;
            tracing::debug!(identity = %ci, error = %err, attempts = *attempts, "grain lookup failed");
            self.pause_before_retry(ci, err, deadline, opts, *attempts)
                .await?;
        }
    }

    /// Sleeps before the next attempt, or gives up with the right error.
    async fn pause_before_retry(
        &self,
        ci: &ClusterIdentity,
        err: ClusterError,
        deadline: Instant,
        opts: &CallOptions,
        attempts: u32,
    ) -> Result<(), ClusterError> {
        if attempts >= opts.max_attempts.max(1) {
            return Err(ClusterError::RetriesExhausted {
                identity: ci.to_string(),
                attempts,
                last: Box::new(err),
            });
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(if err == ClusterError::Timeout {
                err
            } else {
                ClusterError::RetriesExhausted {
                    identity: ci.to_string(),
                    attempts,
                    last: Box::new(err),
                }
            });
        }
        sleep(&self.0.system, opts.pause(attempts).min(remaining)).await;
        Ok(())
    }

    // ------------------------------------------------------------------ shutdown

    /// Leaves the cluster. Graceful: gossip `left` (pushed to every member), deregister from
    /// the provider, stop the local grains (waiting up to `shutdown_timeout`; each stop
    /// broadcasts `ActivationTerminated`), stop gossip, then shut the remote down. Not
    /// graceful: no `left`, the provider registration is left to expire, the grains are
    /// stopped without waiting. The actor system itself is left running (shut it down
    /// afterwards).
    pub fn shutdown(&self, graceful: bool) -> impl Future<Output = ()> + Send + 'static {
        let c = self.clone();
        let rt = self.0.system.runtime().clone();
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
        let _ = block_on(&self.0.system, async move {
            fut.await;
            Ok(())
        });
    }

    async fn shutdown_inner(&self, graceful: bool) {
        if self.0.shut_down.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::info!(cluster = %self.name(), address = %self.address(), graceful, "cluster shutting down");
        if graceful && !self.0.client {
            gossip::leave(self).await;
        }
        if let Err(e) = self.0.config.provider.shutdown(graceful).await {
            tracing::warn!(error = %e, "cluster provider shutdown failed");
        }
        self.0.config.identity_lookup.shutdown(self, graceful).await;
        gossip::stop(self).await;
        self.unsubscribe_events();
        self.0.remote.shutdown();
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name())
            .field("address", &self.address())
            .field("id", &self.0.self_member.id)
            .finish()
    }
}

fn downcast_reply<R: Message>(reply: BoxedMessage) -> Result<R, ClusterError> {
    match protoactor::message::downcast_message::<R>(reply) {
        Ok(r) => Ok(*r),
        Err(other) => match protoactor::message::downcast_message::<GrainErrorResponse>(other) {
            Ok(e) => Err(ClusterError::Grain(*e)),
            Err(other) => Err(ClusterError::UnexpectedResponse {
                expected: std::any::type_name::<R>(),
                actual: other.type_name(),
            }),
        },
    }
}

/// Sleeps on the system's runtime, so callers need no tokio context of their own.
async fn sleep(system: &ActorSystem, d: Duration) {
    if d.is_zero() {
        return;
    }
    let _ = system.runtime().spawn(tokio::time::sleep(d)).await;
}

/// Runs `fut` to completion from synchronous code.
pub(crate) fn block_on<T: Send + 'static>(
    system: &ActorSystem,
    fut: impl Future<Output = Result<T, ClusterError>> + Send + 'static,
) -> Result<T, ClusterError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Err(_) => system.runtime().block_on(fut),
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| system.runtime().block_on(fut))
        }
        Ok(_) => {
            // A current-thread runtime cannot lend its thread: run on the system's runtime.
            let (tx, rx) = std::sync::mpsc::channel();
            system.runtime().spawn(async move {
                let _ = tx.send(fut.await);
            });
            rx.recv().unwrap_or(Err(ClusterError::ShutDown))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let o = CallOptions::default()
            .with_backoff(Duration::from_millis(10), Duration::from_millis(50));
        let pauses: Vec<u128> = (1..=5).map(|n| o.pause(n).as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 50, 50]);
    }

    #[test]
    fn replies_downcast_or_become_errors() {
        let ok: BoxedMessage = Box::new(String::from("hi"));
        assert_eq!(downcast_reply::<String>(ok).unwrap(), "hi");
        let grain: BoxedMessage = Box::new(GrainErrorResponse::new("NOT_FOUND", "x"));
        assert!(matches!(
            downcast_reply::<String>(grain),
            Err(ClusterError::Grain(e)) if e.reason == "NOT_FOUND"
        ));
        let other: BoxedMessage = Box::new(5u8);
        assert!(matches!(
            downcast_reply::<String>(other),
            Err(ClusterError::UnexpectedResponse { actual: "u8", .. })
        ));
    }
}
