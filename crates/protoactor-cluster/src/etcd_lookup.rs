//! A strongly consistent identity lookup on etcd with lease fencing (feature `etcd`): a
//! virtual actor is never two actors, even when a member freezes (SIGSTOP) past failure
//! detection or loses etcd.
//!
//! * Each member hosting kinds holds one etcd **lease** (TTL [`EtcdLookupConfig::ttl`]) and
//!   keeps it alive, one keep-alive at a time.
//! * **Registration before start.** A member activates an identity only after a transaction
//!   "create if absent" put the key `<base>/<cluster>/<kind>/<identity>` (base
//!   `/protoactor-activations`) on its lease, the value naming the member and the grain's PID.
//!   If the key exists, the PID it names is the answer: no second activation. The key is the
//!   single source of truth; where an activation is placed (the disthash owner of the
//!   caller's view, which asks etcd) only matters for the first activation, and an
//!   activation stays where it started until it stops.
//! * **Fencing.** Every activation holds the [`LeaseGuard`] of the lease its key is on. The
//!   guard is valid until `sent + TTL - margin`, where `sent` is the local monotonic instant
//!   taken *before* the last keep-alive (or grant) that etcd answered, and TTL the one etcd
//!   granted: etcd started that TTL after `sent`, so the guard ends at least `margin` before
//!   etcd can delete the key and let another member create it. Before every message but
//!   the lifecycle ones (`Started`, `Stopping`, `Stopped`, `Restarting`), the activation checks
//!   its guard; past it the message is answered as a dead letter (the caller re-resolves) and
//!   the activation stops. A guard that once ran out is never renewed: the member revokes
//!   that lease (its keys go with it) and takes a new one, so after a freeze (SIGCONT) its old
//!   activations never answer again. The placement actor also stops expired activations on
//!   its own (every [`EtcdLookupConfig::check_interval`]).
//! * **Deactivation** deletes the key only if it is still this activation's (its mod
//!   revision), retried until it succeeds or the lease ends. A graceful shutdown stops the
//!   grains and then revokes the lease.
//!
//! Costs: one etcd round trip (the transaction) per activation and per cache miss of the
//! placing member; while etcd is unreachable no new activation can start, and existing ones
//! keep serving only while their lease is valid locally (then they stop; calls resume once
//! etcd is back). A message whose handling started before the guard ran out may still finish
//! after it: the margin must exceed the longest handler. The monotonic clock does not count
//! a suspended machine (Linux `CLOCK_MONOTONIC`): a host suspended (not a process frozen) past
//! the TTL is not fenced by this clock.
//!
//! protoactor-go has no such lookup: Go members use disthash and would activate identities
//! on their own. Use it for clusters (or kinds) that only Rust members host; disthash
//! ([`crate::DistHashIdentityLookup`]) stays the default.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};
use parking_lot::Mutex;
use protoactor::props::ReceiverFunc;
use protoactor::scheduler::{CancelHandle, Scheduler};
use protoactor::{
    Actor, Context, ContextOps, DeadLetterResponse, MessageEnvelope, Pid, Props, Restarting,
    Started, Stopped, Stopping, Terminated,
};
use protoactor_remote::PidExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::activator::{broadcast_terminated, PARTITION_ACTIVATOR};
use crate::disthash::{ask_owner, Answer};
use crate::error::ClusterError;
use crate::etcd_common::{etcd_client_builders, timed, whole_secs, EtcdClientConfig};
use crate::identity_lookup::{
    IdentityLookup, LookupContext, LookupFuture, ShutdownFuture, WeakLookupContext,
};
use crate::proto::{ActivationRequest, ActivationResponse, ClusterIdentity};

/// The default base of the activation keys (outside the etcd provider's `/protoactor/`).
pub const DEFAULT_ACTIVATIONS_KEY: &str = "/protoactor-activations";

/// Settings of [`EtcdIdentityLookup`].
#[derive(Debug, Clone)]
pub struct EtcdLookupConfig {
    /// Endpoints, key prefix (default [`DEFAULT_ACTIVATIONS_KEY`]), timeouts (request 2 s) and
    /// the pause before reconnecting (500 ms), shared with the etcd provider.
    pub client: EtcdClientConfig,
    /// The lease TTL, whole seconds (default 6 s): how long the identities of a member that
    /// froze or died stay unavailable, at most, after its last keep-alive.
    pub ttl: Duration,
    /// How much earlier than etcd's expiry an activation stops serving (default 1 s): longer
    /// than any message handler, shorter than the TTL.
    pub margin: Duration,
    /// Pause between keep-alives (default 1 s).
    pub keepalive_interval: Duration,
    /// How often the placement actor stops activations whose lease ran out (default 200 ms).
    pub check_interval: Duration,
}

impl EtcdLookupConfig {
    /// The defaults with these endpoints.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        EtcdLookupConfig {
            client: EtcdClientConfig::new(
                endpoints,
                DEFAULT_ACTIVATIONS_KEY,
                Duration::from_secs(2),
                Duration::from_millis(500),
            ),
            ttl: Duration::from_secs(6),
            margin: Duration::from_secs(1),
            keepalive_interval: Duration::from_secs(1),
            check_interval: Duration::from_millis(200),
        }
    }

    etcd_client_builders!();

    /// Sets the lease TTL (rounded up to whole seconds, at least 2 s).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
    /// Sets the fencing margin.
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }
    /// Sets the pause between keep-alives.
    pub fn with_keepalive_interval(mut self, interval: Duration) -> Self {
        self.keepalive_interval = interval;
        self
    }
    fn ttl_secs(&self) -> i64 {
        whole_secs(self.ttl, 2)
    }
    /// The key of `ci`'s activation in cluster `cluster`.
    pub fn activation_key(&self, cluster: &str, ci: &ClusterIdentity) -> String {
        format!(
            "{}/{}/{}/{}",
            self.client.base_key, cluster, ci.kind, ci.identity
        )
    }
    fn check(&self) -> Result<(), ClusterError> {
        self.client.check_endpoints("etcd lookup")?;
        let bad = |m: String| Err(ClusterError::Provider(format!("etcd lookup: {m}")));
        let ttl = Duration::from_secs(self.ttl_secs() as u64);
        if self.margin.is_zero() || self.margin + self.keepalive_interval >= ttl {
            return bad(format!(
                "the margin ({:?}) plus the keep-alive interval ({:?}) must be positive and \
                 below the TTL ({ttl:?})",
                self.margin, self.keepalive_interval
            ));
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ the fence

/// The instant until which an activation on a lease may serve: `sent + granted TTL -
/// margin`, where `sent` was taken before the request whose answer granted the TTL. `None`
/// when nothing is left (no TTL granted, or a TTL not above the margin).
pub fn fence_deadline(sent: Instant, granted_ttl_secs: i64, margin: Duration) -> Option<Instant> {
    let ttl = Duration::from_secs(u64::try_from(granted_ttl_secs).ok()?);
    (ttl > margin).then(|| sent + (ttl - margin))
}

/// One lease of this member, as its activations see it: valid until a deadline that only
/// moves forward and, once passed, never comes back.
#[derive(Debug)]
pub struct LeaseGuard {
    id: i64,
    base: Instant,
    /// The deadline in nanoseconds after `base`; 0 once the guard ended.
    until: AtomicU64,
}

impl LeaseGuard {
    /// A guard for lease `id`, valid until `deadline`.
    pub fn new(id: i64, deadline: Instant) -> Self {
        let base = Instant::now();
        let g = LeaseGuard {
            id,
            base,
            until: AtomicU64::new(0),
        };
        g.until.store(g.nanos(deadline).max(1), Ordering::Release);
        g
    }
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }
    /// The lease id.
    pub fn id(&self) -> i64 {
        self.id
    }
    /// True while the deadline has not passed (and the guard was not ended).
    pub fn is_valid(&self) -> bool {
        self.valid_at(Instant::now())
    }
    /// True if the guard is valid at `now`.
    pub fn valid_at(&self, now: Instant) -> bool {
        self.nanos(now) < self.until.load(Ordering::Acquire)
    }
    /// Moves the deadline to `deadline` if that is later, but only while the guard is still
    /// valid now: a guard that ran out is never revived. True if the guard is still valid.
    pub fn extend(&self, deadline: Instant) -> bool {
        let new = self.nanos(deadline);
        let mut cur = self.until.load(Ordering::Acquire);
        loop {
            if self.nanos(Instant::now()) >= cur {
                return false;
            }
            if new <= cur {
                return true;
            }
            match self
                .until
                .compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(c) => cur = c,
            }
        }
    }
    /// Ends the guard now (the lease is known to be gone).
    pub fn end(&self) {
        self.until.store(0, Ordering::Release);
    }
}

/// True for the messages an activation handles even when fenced (its lifecycle).
fn lifecycle(env: &MessageEnvelope) -> bool {
    let m = env.message();
    m.is::<Started>() || m.is::<Stopping>() || m.is::<Stopped>() || m.is::<Restarting>()
}

/// Receiver middleware fencing an activation on `guard`: past the guard, a message is
/// answered as a dead letter (to its sender, if any) and the activation stops.
fn fence(guard: Arc<LeaseGuard>) -> impl Fn(ReceiverFunc) -> ReceiverFunc + Send + Sync {
    move |next: ReceiverFunc| -> ReceiverFunc {
        let guard = guard.clone();
        Arc::new(move |ctx: &mut Context, env: MessageEnvelope| {
            if lifecycle(&env) || guard.is_valid() {
                return next(ctx, env);
            }
            let me = ctx.self_pid().clone();
            tracing::debug!(pid = %me, lease = guard.id(), message = env.message().type_name(), "activation fenced: its lease ran out");
            if let Some(sender) = env.sender() {
                ctx.send(
                    sender,
                    DeadLetterResponse {
                        target: Some(me.clone()),
                    },
                );
            }
            ctx.stop(&me);
        })
    }
}

// ------------------------------------------------------------------ the lease keeper

/// What the keeper shares with the placement actor: the current lease and etcd client.
#[derive(Default)]
struct Shared {
    lease: Mutex<Option<Arc<LeaseGuard>>>,
    client: Mutex<Option<Client>>,
}

impl Shared {
    fn lease(&self) -> Option<Arc<LeaseGuard>> {
        self.lease.lock().clone().filter(|g| g.is_valid())
    }
    fn client(&self) -> Option<Client> {
        self.client.lock().clone()
    }
}

/// Keeps this member's lease: sessions (connect, lease, keep-alives) until stopped.
struct Keeper {
    config: EtcdLookupConfig,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    first: Option<std::sync::mpsc::Sender<Result<(), String>>>,
}

impl Keeper {
    async fn run(mut self) {
        loop {
            let e = match self.session().await {
                Ok(()) => return,
                Err(e) => e,
            };
            if let Some(first) = self.first.take() {
                let _ = first.send(Err(e));
                return;
            }
            tracing::warn!(error = %e, "etcd lookup: lease session failed; reconnecting");
            tokio::select! {
                _ = tokio::time::sleep(self.config.client.retry_interval) => {}
                _ = self.stop.changed() => return,
            }
        }
    }

    /// One session; `Ok` when stopped.
    async fn session(&mut self) -> Result<(), String> {
        let c = &self.config;
        let mut client = c.client.connect(c.keepalive_interval).await?;
        *self.shared.client.lock() = Some(client.clone());
        // The lease of the last session if its guard still holds (etcd kept it meanwhile);
        // else a new one, and the old one is revoked (its keys, if etcd still has them, go).
        let current = self.shared.lease.lock().clone();
        let guard = match current {
            Some(g) if g.is_valid() => g,
            old => {
                if let Some(old) = old {
                    old.end();
                    let _ = c
                        .client
                        .timed("revoke", client.lease_revoke(old.id()))
                        .await;
                }
                let sent = Instant::now();
                let granted = c
                    .client
                    .timed("lease grant", client.lease_grant(c.ttl_secs(), None))
                    .await?;
                let Some(deadline) = fence_deadline(sent, granted.ttl(), c.margin) else {
                    return Err(format!("etcd granted a TTL of {} s", granted.ttl()));
                };
                let g = Arc::new(LeaseGuard::new(granted.id(), deadline));
                *self.shared.lease.lock() = Some(g.clone());
                tracing::info!(
                    lease = g.id(),
                    ttl = granted.ttl(),
                    "etcd lookup: lease granted"
                );
                g
            }
        };
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(()));
        }
        let (mut keeper, mut answers) = c
            .client
            .timed("keepalive", client.lease_keep_alive(guard.id()))
            .await?;
        loop {
            // One keep-alive at a time, so each answer belongs to the instant before its
            // request.
            let sent = Instant::now();
            c.client.timed("keepalive", keeper.keep_alive()).await?;
            let answer = c
                .client
                .timed("keepalive answer", answers.message())
                .await?;
            match answer {
                Some(a) if a.ttl() > 0 => {
                    let extended =
                        fence_deadline(sent, a.ttl(), c.margin).is_some_and(|d| guard.extend(d));
                    if !extended {
                        return Err(format!(
                            "lease {} ran out locally before its keep-alive was answered",
                            guard.id()
                        ));
                    }
                }
                Some(_) => {
                    guard.end();
                    return Err(format!("lease {} expired in etcd", guard.id()));
                }
                None => return Err("keepalive stream ended".into()),
            }
            tokio::select! {
                _ = tokio::time::sleep(c.keepalive_interval) => {}
                _ = self.stop.changed() => return Ok(()),
            }
        }
    }
}

// ------------------------------------------------------------------ etcd operations

/// The value of an activation key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Holder {
    /// Member id.
    member: String,
    /// The member's address (`host:port`).
    address: String,
    /// The grain's PID id.
    pid: String,
    /// The lease the key is on.
    lease: i64,
}

/// The outcome of a claim on an activation key.
#[derive(Debug)]
enum Claim {
    /// The key is ours, at this revision.
    Created(i64),
    /// The key is held, at this mod revision.
    Held(Holder, i64),
    /// etcd could not be asked, or the value is not a holder.
    Failed(String),
}

async fn claim(
    mut client: Client,
    key: String,
    value: String,
    lease: i64,
    limit: Duration,
) -> Claim {
    let txn = Txn::new()
        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            key.clone(),
            value,
            Some(PutOptions::new().with_lease(lease)),
        )])
        .or_else([TxnOp::get(key.clone(), None)]);
    let resp = match timed(limit, "txn", client.txn(txn)).await {
        Ok(r) => r,
        Err(e) => return Claim::Failed(e),
    };
    if resp.succeeded() {
        return Claim::Created(resp.header().map_or(0, |h| h.revision()));
    }
    let kv = resp.op_responses().into_iter().find_map(|r| match r {
        TxnOpResponse::Get(g) => g.kvs().first().cloned(),
        _ => None,
    });
    match kv {
        // Deleted between the compare and the read cannot happen in one txn; a missing kv
        // means the key is gone by now: the caller retries.
        None => Claim::Failed(format!("{key}: held, but no value")),
        Some(kv) => match serde_json::from_slice::<Holder>(kv.value()) {
            Ok(h) => Claim::Held(h, kv.mod_revision()),
            Err(e) => Claim::Failed(format!("{key}: not an activation: {e}")),
        },
    }
}

/// Deletes `key` if its mod revision is still `rev`, retrying while `guard` holds (after
/// that the lease, and the key with it, is revoked or expires).
async fn release(
    shared: Arc<Shared>,
    key: String,
    rev: i64,
    guard: Arc<LeaseGuard>,
    config: Arc<EtcdLookupConfig>,
) {
    loop {
        if let Some(mut client) = shared.client() {
            let txn = Txn::new()
                .when([Compare::mod_revision(key.clone(), CompareOp::Equal, rev)])
                .and_then([TxnOp::delete(key.clone(), None)]);
            match config.client.timed("release", client.txn(txn)).await {
                Ok(_) => return,
                Err(e) => {
                    tracing::debug!(%key, error = %e, "etcd lookup: release failed; retrying")
                }
            }
        }
        if !guard.is_valid() {
            return;
        }
        tokio::time::sleep(config.client.retry_interval).await;
    }
}

// ------------------------------------------------------------------ the placement actor

/// The periodic check of the activations' leases (local only).
#[derive(Debug, Clone, Copy)]
struct Check;

struct Activation {
    pid: Pid,
    key: String,
    rev: i64,
    guard: Arc<LeaseGuard>,
    stopping: bool,
}

struct Placement {
    node: WeakLookupContext,
    shared: Arc<Shared>,
    config: Arc<EtcdLookupConfig>,
    actors: HashMap<ClusterIdentity, Activation>,
    by_pid: HashMap<Pid, ClusterIdentity>,
    /// Claims in flight, with the requesters waiting for each.
    pending: HashMap<ClusterIdentity, Vec<Pid>>,
    check: Option<CancelHandle>,
    stopping: bool,
}

fn failed() -> ActivationResponse {
    ActivationResponse {
        pid: None,
        failed: true,
        topology_hash: 0,
    }
}

fn found(pid: &Pid) -> ActivationResponse {
    ActivationResponse {
        pid: Some(pid.to_proto()),
        ..Default::default()
    }
}

impl Actor for Placement {
    fn receive(&mut self, ctx: &mut Context) {
        let Some(node) = self.node.upgrade() else {
            return;
        };
        if let Some(req) = ctx.message_as::<ActivationRequest>() {
            let ci = req.cluster_identity.clone().unwrap_or_default();
            self.on_request(&node, ctx, ci);
        } else if ctx.message_as::<Check>().is_some() {
            self.stop_fenced(ctx);
        } else if let Some(t) = ctx.message_as::<Terminated>() {
            let who = t.who.clone();
            self.on_terminated(&node, ctx, &who);
        } else if ctx.message_as::<Started>().is_some() {
            let every = self.config.check_interval;
            self.check = Some(Scheduler::new(ctx.system()).send_repeatedly(
                every,
                every,
                ctx.self_pid(),
                Check,
            ));
        } else if ctx.message_as::<Stopping>().is_some() {
            self.stopping = true;
            if let Some(c) = self.check.take() {
                c.cancel();
            }
        }
    }
}

impl Placement {
    fn on_request(&mut self, node: &LookupContext, ctx: &mut Context, ci: ClusterIdentity) {
        if node.kind(&ci.kind).is_none() || self.stopping || ci.validate().is_err() {
            ctx.respond(failed());
            return;
        }
        if let Some(a) = self.actors.get(&ci) {
            let r = if a.guard.is_valid() && !a.stopping {
                found(&a.pid)
            } else {
                failed()
            };
            ctx.respond(r);
            return;
        }
        let (Some(guard), Some(client)) = (self.shared.lease(), self.shared.client()) else {
            // No valid lease (etcd unreachable, or a new lease on its way): later.
            ctx.respond(failed());
            return;
        };
        let waiter = ctx.sender().cloned();
        if let Some(w) = self.pending.get_mut(&ci) {
            w.extend(waiter);
            return;
        }
        self.pending
            .insert(ci.clone(), waiter.into_iter().collect());
        // `<identity>$<n>`, as disthash names it; known before the claim, so the key names it.
        let name = format!("{}{}", ci.identity, ctx.system().registry().next_id());
        let id = format!("{}/{}", ctx.self_pid().id(), name);
        let holder = Holder {
            member: node.member_list().self_id().to_string(),
            address: node.address().to_string(),
            pid: id.clone(),
            lease: guard.id(),
        };
        let value = serde_json::to_string(&holder).unwrap_or_default();
        let key = self.config.activation_key(node.cluster_name(), &ci);
        let fut = claim(
            client,
            key.clone(),
            value,
            guard.id(),
            self.config.client.request_timeout,
        );
        ctx.reenter_after(fut, move |actor: &mut Placement, ctx, outcome| {
            let waiters = actor.pending.remove(&ci).unwrap_or_default();
            let resp = match actor.node.upgrade() {
                Some(node) => actor.claimed(&node, ctx, ci, name, key, guard, holder, outcome),
                None => failed(),
            };
            for w in waiters {
                ctx.send(&w, resp.clone());
            }
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn claimed(
        &mut self,
        node: &LookupContext,
        ctx: &mut Context,
        ci: ClusterIdentity,
        name: String,
        key: String,
        guard: Arc<LeaseGuard>,
        me: Holder,
        outcome: Claim,
    ) -> ActivationResponse {
        match outcome {
            Claim::Created(rev) => {
                let kind = node.kind(&ci.kind).filter(|_| !self.stopping);
                let Some(kind) = kind.filter(|_| guard.is_valid()) else {
                    self.release(ctx, key, rev, guard);
                    return failed();
                };
                node.register_activation(&me.pid, Arc::new(ci.clone()));
                let props = kind
                    .props()
                    .clone()
                    .with_receiver_middleware(fence(guard.clone()));
                match ctx.spawn_named_unvalidated(&props, &name) {
                    Ok(pid) => {
                        tracing::debug!(identity = %ci, %pid, rev, "activated under the etcd key");
                        node.activation_spawned(&pid);
                        self.by_pid.insert(pid.clone(), ci.clone());
                        let resp = found(&pid);
                        self.actors.insert(
                            ci,
                            Activation {
                                pid,
                                key,
                                rev,
                                guard,
                                stopping: false,
                            },
                        );
                        resp
                    }
                    Err(e) => {
                        node.unregister_activation(&me.pid);
                        tracing::warn!(identity = %ci, error = %e, "grain activation failed");
                        self.release(ctx, key, rev, guard);
                        failed()
                    }
                }
            }
            Claim::Held(holder, rev) if holder.member == me.member => {
                match self.actors.get(&ci) {
                    Some(a) if a.guard.is_valid() && !a.stopping => found(&a.pid),
                    // Ours but not running (a release that has not landed, or an old lease
                    // of this member): its activation is gone, so the key goes; the caller
                    // retries and claims it anew.
                    _ => {
                        self.release(ctx, key, rev, guard);
                        failed()
                    }
                }
            }
            Claim::Held(holder, _) => {
                found(&Pid::new(holder.address.as_str(), holder.pid.as_str()))
            }
            Claim::Failed(e) => {
                tracing::debug!(identity = %ci, error = %e, "etcd lookup: claim failed");
                failed()
            }
        }
    }

    fn release(&self, ctx: &Context, key: String, rev: i64, guard: Arc<LeaseGuard>) {
        let (shared, config) = (self.shared.clone(), self.config.clone());
        ctx.system()
            .runtime()
            .spawn(release(shared, key, rev, guard, config));
    }

    /// Stops the activations whose lease ran out (their next message would stop them too).
    fn stop_fenced(&mut self, ctx: &mut Context) {
        for a in self.actors.values_mut() {
            if !a.stopping && !a.guard.is_valid() {
                a.stopping = true;
                tracing::debug!(pid = %a.pid, lease = a.guard.id(), "stopping an activation whose lease ran out");
                ctx.stop(&a.pid);
            }
        }
    }

    fn on_terminated(&mut self, node: &LookupContext, ctx: &mut Context, who: &Pid) {
        let Some(ci) = self.by_pid.remove(who) else {
            return;
        };
        if let Some(a) = self.actors.remove(&ci) {
            // Only now, after the grain stopped: the key goes if it is still this one's.
            self.release(ctx, a.key, a.rev, a.guard);
        }
        node.unregister_activation(who.id());
        broadcast_terminated(node, ctx, who, ci);
    }
}

// ------------------------------------------------------------------ the lookup

struct Running {
    pid: Pid,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    keeper: Option<JoinHandle<()>>,
}

/// The strongly consistent identity lookup on etcd. See the [module docs](self).
///
/// ```no_run
/// use protoactor_cluster::etcd::{EtcdConfig, EtcdProvider};
/// use protoactor_cluster::etcd_lookup::{EtcdIdentityLookup, EtcdLookupConfig};
/// use protoactor_cluster::ClusterConfig;
///
/// let endpoints = ["http://127.0.0.1:2379"];
/// let config = ClusterConfig::new(
///     "bank",
///     EtcdProvider::new(EtcdConfig::new(endpoints)),
///     EtcdIdentityLookup::new(EtcdLookupConfig::new(endpoints)),
/// );
/// # let _ = config;
/// ```
pub struct EtcdIdentityLookup {
    config: Arc<EtcdLookupConfig>,
    running: Mutex<Option<Running>>,
}

impl EtcdIdentityLookup {
    /// A lookup with `config` (one per cluster node).
    pub fn new(config: EtcdLookupConfig) -> Self {
        EtcdIdentityLookup {
            config: Arc::new(config),
            running: Mutex::new(None),
        }
    }

    /// The lease this member's new activations go on, while it is valid.
    pub fn lease_id(&self) -> Option<i64> {
        let running = self.running.lock();
        running.as_ref()?.shared.lease().map(|g| g.id())
    }
}

impl IdentityLookup for EtcdIdentityLookup {
    fn setup(&self, node: &LookupContext, client: bool) -> Result<(), ClusterError> {
        let mut running = self.running.lock();
        if running.is_some() {
            return Err(ClusterError::AlreadyStarted);
        }
        self.config.check()?;
        let shared = Arc::new(Shared::default());
        let (stop, stop_rx) = watch::channel(false);
        // Only a node hosting kinds needs a lease; callers only ask the placing members.
        let keeper = if !client && node.hosts_kinds() {
            let (first_tx, first_rx) = std::sync::mpsc::channel();
            let keeper = Keeper {
                config: (*self.config).clone(),
                shared: shared.clone(),
                stop: stop_rx,
                first: Some(first_tx),
            };
            let task = node.system().runtime().spawn(keeper.run());
            let bound = self.config.client.connect_timeout + 3 * self.config.client.request_timeout;
            let first = first_rx
                .recv_timeout(bound)
                .unwrap_or_else(|_| Err(format!("no answer within {bound:?}")));
            if let Err(e) = first {
                let _ = stop.send(true);
                task.abort();
                return Err(ClusterError::Provider(format!(
                    "etcd lookup: cannot reach {:?}: {e}",
                    self.config.client.endpoints
                )));
            }
            Some(task)
        } else {
            None
        };
        let weak = node.downgrade();
        let (s, c) = (shared.clone(), self.config.clone());
        let props = Props::from_producer(move || Placement {
            node: weak.clone(),
            shared: s.clone(),
            config: c.clone(),
            actors: HashMap::new(),
            by_pid: HashMap::new(),
            pending: HashMap::new(),
            check: None,
            stopping: false,
        });
        let pid = match node
            .system()
            .root()
            .spawn_named(&props, PARTITION_ACTIVATOR)
        {
            Ok(pid) => pid,
            Err(e) => {
                let _ = stop.send(true);
                if let Some(t) = keeper {
                    t.abort();
                }
                return Err(ClusterError::Spawn(e.to_string()));
            }
        };
        *running = Some(Running {
            pid,
            shared,
            stop,
            keeper,
        });
        Ok(())
    }

    fn get(&self, node: &LookupContext, ci: &ClusterIdentity, timeout: Duration) -> LookupFuture {
        let (node, ci) = (node.clone(), ci.clone());
        let pause = self.config.check_interval;
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let Some(Answer { owner, resp, .. }) =
                    ask_owner(&node, &ci, deadline, timeout).await?
                else {
                    continue;
                };
                let pid = match resp {
                    ActivationResponse {
                        pid: Some(pid),
                        failed: false,
                        ..
                    } => pid.to_pid(),
                    _ => return Err(ClusterError::ActivationFailed { owner }),
                };
                // The key names a member this view no longer has (frozen or dead, its lease
                // not yet expired): wait for etcd to drop the key rather than call it.
                let address = pid.address().to_string();
                if address == node.address()
                    || node.member_list().topology().contains_address(&address)
                {
                    return Ok(pid);
                }
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return Err(ClusterError::ActivationFailed { owner });
                }
                tokio::time::sleep(pause.min(left)).await;
            }
        })
    }

    fn shutdown(&self, node: &LookupContext, graceful: bool) -> ShutdownFuture {
        let Some(r) = self.running.lock().take() else {
            return Box::pin(async {});
        };
        let system = node.system().clone();
        let config = self.config.clone();
        if !graceful {
            system.root().stop(&r.pid);
            let _ = r.stop.send(true);
            if let Some(t) = r.keeper {
                t.abort();
            }
            return Box::pin(async {});
        }
        let wait = node.shutdown_timeout();
        Box::pin(async move {
            // The grains stop first (their keys are released as each ends), then the lease
            // goes, and every key still on it with it.
            let fut = system.root().poison_future(&r.pid);
            let _ = tokio::time::timeout(wait, fut).await;
            let _ = r.stop.send(true);
            if let Some(t) = r.keeper {
                t.abort();
            }
            let lease = r.shared.lease.lock().take();
            let client = r.shared.client();
            if let (Some(g), Some(mut c)) = (lease, client) {
                g.end();
                let _ = config.client.timed("revoke", c.lease_revoke(g.id())).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_the_ttl_minus_the_margin_after_the_request_was_sent() {
        let sent = Instant::now();
        let m = Duration::from_secs(1);
        assert_eq!(
            fence_deadline(sent, 6, m),
            Some(sent + Duration::from_secs(5))
        );
        // Nothing left: no TTL, an expired lease (-1 / 0), a TTL not above the margin.
        assert_eq!(fence_deadline(sent, 0, m), None);
        assert_eq!(fence_deadline(sent, -1, m), None);
        assert_eq!(fence_deadline(sent, 1, m), None);
        // The answer's TTL counts from the send, not from the answer: an answer that took
        // 3 s leaves 2 s, not 5 s.
        let answered = sent + Duration::from_secs(3);
        let d = fence_deadline(sent, 6, m).unwrap();
        assert_eq!(d.duration_since(answered), Duration::from_secs(2));
    }

    #[test]
    fn a_guard_moves_forward_only_and_is_never_revived() {
        let now = Instant::now();
        let g = LeaseGuard::new(7, now + Duration::from_secs(60));
        assert!(g.is_valid());
        assert_eq!(g.id(), 7);
        // An earlier deadline does not shorten it; a later one extends it.
        assert!(g.extend(now + Duration::from_secs(1)));
        assert!(g.valid_at(now + Duration::from_secs(30)));
        assert!(g.extend(now + Duration::from_secs(120)));
        assert!(g.valid_at(now + Duration::from_secs(90)));
        assert!(!g.valid_at(now + Duration::from_secs(121)));
        // Ended: invalid, and no extension brings it back.
        g.end();
        assert!(!g.is_valid());
        assert!(!g.extend(now + Duration::from_secs(600)));
        assert!(!g.is_valid());
    }

    #[test]
    fn a_guard_that_ran_out_stays_out() {
        // A deadline already past (a keep-alive answered after the guard ran out).
        let g = LeaseGuard::new(1, Instant::now());
        std::thread::sleep(Duration::from_millis(5));
        assert!(!g.is_valid());
        assert!(
            !g.extend(Instant::now() + Duration::from_secs(10)),
            "a late keep-alive answer must not revive the activations of a lease that ran out"
        );
        assert!(!g.is_valid());
    }

    #[test]
    fn config_is_checked_and_keys_are_per_cluster_kind_and_identity() {
        let c = EtcdLookupConfig::new(["x"]).with_base_key("/a/");
        assert!(c.check().is_ok());
        assert_eq!(
            c.activation_key("bank", &ClusterIdentity::new("acct/1", "Account")),
            "/a/bank/Account/acct/1"
        );
        assert_eq!(
            c.clone().with_ttl(Duration::from_millis(2500)).ttl_secs(),
            3
        );
        assert_eq!(c.clone().with_ttl(Duration::ZERO).ttl_secs(), 2);
        assert!(c.clone().with_margin(Duration::ZERO).check().is_err());
        assert!(c
            .clone()
            .with_ttl(Duration::from_secs(2))
            .with_margin(Duration::from_secs(1))
            .check()
            .is_err());
        assert!(EtcdLookupConfig::new(Vec::<String>::new()).check().is_err());
        // Outside the etcd provider's prefix (`/protoactor/<cluster>/`), so its watch never
        // sees activation keys.
        let k = EtcdLookupConfig::new(["x"]).activation_key("c", &ClusterIdentity::new("i", "k"));
        assert!(!k.starts_with("/protoactor/"), "{k}");
    }

    #[test]
    fn holders_round_trip_as_json() {
        let h = Holder {
            member: "c@1".into(),
            address: "127.0.0.1:1".into(),
            pid: "partition-activator/x$1".into(),
            lease: 42,
        };
        let s = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Holder>(&s).unwrap(), h);
    }
}
