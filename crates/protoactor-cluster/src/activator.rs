//! The placement actor, registered as `partition-activator` on every node (protoactor-go's
//! disthash `placementActor`). It answers `ActivationRequest`s for the kinds this node hosts
//! by spawning the grain as its child `partition-activator/<identity>$<n>` (the PID shape Go
//! produces), returns the existing PID for an active identity, and answers
//! `ActivationResponse { failed: true }` for a kind it does not host (Go's module stays
//! silent and the caller waits 5 s). When a grain stops it broadcasts
//! `ActivationTerminated` to the `eventstream` of every member, itself included.
//!
//! Unlike Go's, it activates only what its own view of the topology gives to this node, so
//! an identity is never activated on two members because a caller's view lagged:
//! * a request for an identity this view gives to another member is answered `failed`
//!   (with this node's topology hash), at once when the caller's hash shows its view is
//!   behind (a hash this node had before) or the same; when the caller's view may be ahead
//!   (a hash never seen here, or Go's 0) the answer waits for this node's next topology, at
//!   most [`ClusterConfig::stale_view_wait`], and is decided then;
//! * on every topology change and every [`ClusterConfig::placement_check_interval`] it stops
//!   the activations another member owns (orphans).
//!
//! [`ClusterConfig::stale_view_wait`]: crate::ClusterConfig::stale_view_wait
//! [`ClusterConfig::placement_check_interval`]: crate::ClusterConfig::placement_check_interval

use protoactor::ContextOps;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use protoactor::scheduler::{CancelHandle, Scheduler};
use protoactor::{Actor, Context, Pid, Props, Started, Stopping, Terminated};
use protoactor_remote::PidExt;

use crate::hash::owner_of;
use crate::identity_lookup::{LookupContext, WeakLookupContext};
use crate::proto::{
    ActivationRequest, ActivationResponse, ActivationTerminated, ClusterIdentity, ClusterTopology,
    Member,
};

/// The actor name of the placement actor, as Go addresses it on every member.
pub const PARTITION_ACTIVATOR: &str = "partition-activator";
/// The actor name of the event stream process, where `ActivationTerminated` is sent.
pub const EVENT_STREAM: &str = "eventstream";

pub(crate) fn props(node: &LookupContext, releases: Arc<Releases>) -> Props {
    let weak = node.downgrade();
    Props::from_producer(move || PlacementActor {
        node: weak.clone(),
        recheck: None,
        releases: releases.clone(),
        seen_topology: false,
        joined: Vec::new(),
        stopping: false,
        handing_off: Vec::new(),
        orphans: HashMap::new(),
        to_stop: VecDeque::new(),
        told: 0,
        scanned: None,
    })
}

/// Most orphans told to stop and not terminated yet. A topology change that moves tens of
/// thousands of grains stops them in this window, refilled as they terminate: the runtime
/// never holds more than this many stops at once, so the gossip and heartbeat tasks, the
/// remote and the calls keep their turns (all at once, a member once blocked its live peers
/// as "heartbeat expired" and a call took 4 times its deadline).
const STOP_WINDOW: usize = 256;

/// The activations that ended on other members lately (from the `ActivationTerminated`
/// they broadcast), so a member that just joined can wait for the former owner of an
/// identity to release it before activating it.
#[derive(Default)]
pub(crate) struct Releases {
    ended: Mutex<HashMap<ClusterIdentity, (Instant, String)>>,
    /// Entries `ended` kept at its last prune.
    kept: Mutex<usize>,
    /// Members (by address) that said they released everything another member's join took
    /// from them (an `ActivationTerminated` with no identity, from their placement actor).
    released_all: Mutex<HashMap<String, Instant>>,
    notify: tokio::sync::Notify,
}

/// How long a release is remembered (longer than any hand-off wait).
const RELEASES_KEPT: Duration = Duration::from_secs(60);

impl Releases {
    /// Records an `ActivationTerminated` this node received.
    pub(crate) fn record(&self, t: &ActivationTerminated) {
        let Some(pid) = &t.pid else {
            return;
        };
        let now = Instant::now();
        let Some(ci) = &t.cluster_identity else {
            if pid.id == PARTITION_ACTIVATOR {
                self.released_all.lock().insert(pid.address.clone(), now);
                self.notify.notify_waiters();
            }
            return;
        };
        {
            let mut ended = self.ended.lock();
            // Pruned once the map doubled since the last prune: amortised O(1) per release
            // (a prune per release made a move of 45,000 grains quadratic on every member).
            let mut kept = self.kept.lock();
            if ended.len() >= 2 * *kept + 1024 {
                ended.retain(|_, (at, _)| now.duration_since(*at) < RELEASES_KEPT);
                *kept = ended.len();
            }
            ended.insert(ci.clone(), (now, pid.address.clone()));
        }
        self.notify.notify_waiters();
    }

    /// True if `by` released `ci` after `since`, or released everything since this node
    /// started (it saw this node join: it never activates `ci` again while that holds).
    fn released(&self, ci: &ClusterIdentity, by: &str, since: Instant) -> bool {
        self.released_all.lock().contains_key(by)
            || self
                .ended
                .lock()
                .get(ci)
                .is_some_and(|(at, from)| *at >= since && from == by)
    }

    /// Waits until `by` released `ci` after `since`, at most `limit`; true if it did.
    async fn wait(
        self: Arc<Self>,
        ci: ClusterIdentity,
        by: String,
        since: Instant,
        limit: Duration,
    ) -> bool {
        let wait = async {
            loop {
                let notified = self.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.released(&ci, &by, since) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

/// The periodic re-check of the activations (local only, never on the wire).
#[derive(Debug, Clone, Copy)]
struct Recheck;

struct PlacementActor {
    node: WeakLookupContext,
    recheck: Option<CancelHandle>,
    releases: Arc<Releases>,
    seen_topology: bool,
    /// Members that joined lately (this one, after its first topology with others), and when.
    joined: Vec<(String, Instant)>,
    /// Set once the actor stops (the node leaves): requests answered later, after a wait,
    /// must not spawn grains that nobody would stop.
    stopping: bool,
    /// Members that joined, with the activations stopped for that topology that have not
    /// terminated yet; once none is left they are told everything was released.
    handing_off: Vec<(Vec<String>, HashSet<String>)>,
    /// Orphans to stop, until they terminate: `true` once told (see [`STOP_WINDOW`]).
    orphans: HashMap<Pid, bool>,
    /// The orphans not told yet, in the order found.
    to_stop: VecDeque<Pid>,
    /// Orphans told and not terminated.
    told: usize,
    /// The topology hash of the last scan for orphans.
    scanned: Option<u64>,
}

/// What to do with an activation request for an identity this node's view does not give
/// to this node.
#[derive(Debug, PartialEq, Eq)]
enum NotOwned {
    /// The caller's view is the same or behind: answer `failed` now.
    Refuse,
    /// The caller's view may be ahead (a hash never seen here, or 0): wait for this node's
    /// next topology.
    Wait,
}

impl Actor for PlacementActor {
    fn receive(&mut self, ctx: &mut Context) {
        let Some(node) = self.node.upgrade() else {
            return;
        };
        if let Some(req) = ctx.message_as::<ActivationRequest>() {
            let req = req.clone();
            self.on_request(&node, ctx, req);
        } else if let Some(t) = ctx.message_as::<ClusterTopology>() {
            let t = t.clone();
            // A node's own first topology lists everyone as joined: nothing to hand off.
            let first = !self.seen_topology;
            self.note_joins(&node, &t);
            let stopped = self.stop_orphans(&node, ctx);
            let me = node.address();
            let joiners: Vec<String> = t
                .joined
                .iter()
                .map(|m| m.address())
                .filter(|a| a != me)
                .collect();
            if !first && !joiners.is_empty() {
                self.handing_off.push((joiners, stopped));
                self.announce_releases(&node, ctx);
            }
        } else if ctx.message_as::<Recheck>().is_some() {
            // Orphans arise only from a topology change (activations check the owner in the
            // current view): with the view scanned already, only the window moves on. A
            // full scan of a million activations every second starved the stops.
            if self.scanned != Some(node.member_list().topology_hash()) {
                self.stop_orphans(&node, ctx);
            }
            // Progress even if grains of the window never stop (stuck in a handler).
            self.tell_orphans(ctx, STOP_WINDOW);
        } else if let Some(t) = ctx.message_as::<Terminated>() {
            let who = t.who.clone();
            self.on_terminated(&node, ctx, &who);
        } else if ctx.message_as::<Started>().is_some() {
            let every = node.timings().check_interval;
            if !every.is_zero() {
                self.recheck = Some(Scheduler::new(ctx.system()).send_repeatedly(
                    every,
                    every,
                    ctx.self_pid(),
                    Recheck,
                ));
            }
        } else if ctx.message_as::<Stopping>().is_some() {
            self.stopping = true;
            if let Some(r) = self.recheck.take() {
                r.cancel();
            }
        }
    }
}

fn failed(node: &LookupContext) -> ActivationResponse {
    ActivationResponse {
        pid: None,
        failed: true,
        topology_hash: node.member_list().topology_hash(),
    }
}

impl PlacementActor {
    fn on_request(&mut self, node: &LookupContext, ctx: &mut Context, req: ActivationRequest) {
        let ci = req.cluster_identity.clone().unwrap_or_default();
        if node.kind(&ci.kind).is_none() {
            tracing::debug!(kind = %ci.kind, "activation request for a kind this node does not host");
            ctx.respond(failed(node));
            return;
        }
        let ml = node.member_list();
        let view = ml.topology();
        if view.owner(&ci.kind, &ci.identity) == Some(node.address()) {
            self.activate_after_handoff(node, ctx, ci);
            return;
        }
        let caller = req.topology_hash;
        let decision = if caller == view.hash() || ml.is_past_topology(caller) {
            NotOwned::Refuse
        } else {
            NotOwned::Wait
        };
        tracing::debug!(identity = %ci, caller, mine = view.hash(), ?decision, "activation request for an identity this view gives to another member");
        if decision == NotOwned::Refuse {
            ctx.respond(failed(node));
            return;
        }
        // Decided again once this node's view changed (or the wait is over); other requests
        // are handled meanwhile.
        let mine = view.hash();
        let (ml, wait) = (ml.clone(), node.timings().stale_view_wait);
        let changed = async move { ml.wait_until(wait, move |t| t.hash() != mine).await };
        ctx.reenter_after(changed, move |actor: &mut PlacementActor, ctx, _| {
            let Some(node) = actor.node.upgrade() else {
                return;
            };
            let owner = node.member_list().owner(&ci.kind, &ci.identity);
            if owner.as_deref() == Some(node.address()) {
                actor.activate_after_handoff(&node, ctx, ci);
            } else {
                ctx.respond(failed(&node));
            }
        });
    }

    /// Records the members that joined. A node's own first topology lists everyone as
    /// joined; of that one only the node itself counts (it is the one that just joined).
    fn note_joins(&mut self, node: &LookupContext, t: &ClusterTopology) {
        let now = Instant::now();
        let window = node.timings().handoff_timeout;
        self.joined
            .retain(|(_, at)| now.duration_since(*at) < window);
        if !self.seen_topology {
            self.seen_topology = true;
            if t.members.len() > 1 {
                self.joined
                    .push((node.member_list().self_id().to_string(), now));
            }
        } else {
            self.joined
                .extend(t.joined.iter().map(|m| (m.id.clone(), now)));
        }
    }

    /// The member that owned `ci` before the members that joined lately, if it is another
    /// member still in the topology (it may still run the activation), with when the join
    /// happened.
    fn former_owner(
        &self,
        node: &LookupContext,
        ci: &ClusterIdentity,
    ) -> Option<(String, Instant)> {
        let window = node.timings().handoff_timeout;
        let now = Instant::now();
        let recent: Vec<&(String, Instant)> = self
            .joined
            .iter()
            .filter(|(_, at)| now.duration_since(*at) < window)
            .collect();
        let since = recent.iter().map(|(_, at)| *at).min()?;
        let before: Vec<Member> = node
            .member_list()
            .topology()
            .members()
            .filter(|m| !recent.iter().any(|(id, _)| *id == m.id))
            .cloned()
            .collect();
        let former = owner_of(&before, &ci.kind, &ci.identity)?.address();
        (former != node.address()).then_some((former, since))
    }

    /// Activates `ci` and answers the request; on a member that joined lately, only after
    /// the identity's former owner released it (its `ActivationTerminated`), or the
    /// hand-off time since the join passed.
    fn activate_after_handoff(
        &mut self,
        node: &LookupContext,
        ctx: &mut Context,
        ci: ClusterIdentity,
    ) {
        let handoff = if node.activation_pid(&ci).is_some() {
            None
        } else {
            self.former_owner(node, &ci)
        };
        let Some((former, since)) = handoff else {
            let resp = self.activate(node, ctx, ci);
            ctx.respond(resp);
            return;
        };
        let left =
            (since + node.timings().handoff_timeout).saturating_duration_since(Instant::now());
        let released = self
            .releases
            .clone()
            .wait(ci.clone(), former.clone(), since, left);
        ctx.reenter_after(
            released,
            move |actor: &mut PlacementActor, ctx, released| {
                let Some(node) = actor.node.upgrade() else {
                    return;
                };
                tracing::debug!(identity = %ci, %former, released, "hand-off over");
                // Decided on the view of now: the owner may have changed meanwhile.
                let owner = node.member_list().owner(&ci.kind, &ci.identity);
                let resp = if owner.as_deref() == Some(node.address()) {
                    actor.activate(&node, ctx, ci)
                } else {
                    failed(&node)
                };
                ctx.respond(resp);
            },
        );
    }

    fn activate(
        &mut self,
        node: &LookupContext,
        ctx: &mut Context,
        ci: ClusterIdentity,
    ) -> ActivationResponse {
        if let Some(pid) = node.activation_pid(&ci) {
            return ActivationResponse {
                pid: Some(pid.to_proto()),
                ..Default::default()
            };
        }
        if let Err(e) = ci.validate() {
            tracing::warn!(error = %e, "activation request refused");
            return failed(node);
        }
        let Some(kind) = node.kind(&ci.kind).filter(|_| !self.stopping) else {
            return failed(node);
        };
        // `<identity>$<n>`: the name Go's SpawnPrefix(props, identity) gives the child. The
        // id is known before the spawn, so the grain can read its identity from `Started` on.
        let name = format!("{}{}", ci.identity, ctx.system().registry().next_id());
        let id = format!("{}/{}", ctx.self_pid().id(), name);
        node.register_activation(&id, Arc::new(ci.clone()));
        match ctx.spawn_named_unvalidated(kind.props(), &name) {
            Ok(pid) => {
                let response_pid = pid.to_proto();
                node.activation_spawned(&pid);
                ActivationResponse {
                    pid: Some(response_pid),
                    ..Default::default()
                }
            }
            Err(e) => {
                node.unregister_activation(&id);
                tracing::warn!(identity = %ci, error = %e, "grain activation failed");
                failed(node)
            }
        }
    }

    /// Stops the activations the current view gives to another member, at most
    /// [`STOP_WINDOW`] at a time (the others as those terminate). They leave the map when
    /// they terminate; until then a request for them is refused (not owned) anyway.
    /// Returns the ids of the activations to stop.
    fn stop_orphans(&mut self, node: &LookupContext, ctx: &mut Context) -> HashSet<String> {
        let view = node.member_list().topology();
        self.scanned = Some(view.hash());
        let me = node.address();
        let mut stopped = HashSet::new();
        let (orphans, to_stop) = (&mut self.orphans, &mut self.to_stop);
        node.for_each_activation(|kind, identity, pid| {
            let owner = view.owner(kind, identity);
            if owner != Some(me) {
                stopped.insert(pid.id().to_string());
                if !orphans.contains_key(pid) {
                    tracing::debug!(%kind, %identity, ?owner, "grain owned elsewhere: stopping the local activation");
                    orphans.insert(pid.clone(), false);
                    to_stop.push_back(pid.clone());
                }
            }
        });
        self.tell_orphans(ctx, 0);
        stopped
    }

    /// Tells orphans to stop (poison: requests queued before are answered) while fewer
    /// than [`STOP_WINDOW`] are stopping, and `extra` more.
    fn tell_orphans(&mut self, ctx: &mut Context, mut extra: usize) {
        while self.told < STOP_WINDOW || extra > 0 {
            let Some(pid) = self.to_stop.pop_front() else {
                break;
            };
            let Some(told) = self.orphans.get_mut(&pid) else {
                continue; // terminated meanwhile
            };
            if self.told >= STOP_WINDOW {
                extra -= 1;
            }
            *told = true;
            self.told += 1;
            ctx.poison(&pid);
        }
    }

    /// Tells the members that joined, once the activations their topology moved away from
    /// here all terminated, that this member released everything they took over: an
    /// `ActivationTerminated` with this placement actor's PID and no identity, at their
    /// `eventstream` (after the per-grain ones, on the same connection). A Go member
    /// republishes it locally, where nothing listens.
    fn announce_releases(&mut self, node: &LookupContext, ctx: &mut Context) {
        let me = Pid::new(node.address(), PARTITION_ACTIVATOR).to_proto();
        self.handing_off.retain(|(joiners, waiting)| {
            if !waiting.is_empty() {
                return true;
            }
            for j in joiners {
                let marker = ActivationTerminated {
                    pid: Some(me.clone()),
                    cluster_identity: None,
                };
                ctx.send(&Pid::new(j.as_str(), EVENT_STREAM), marker);
            }
            false
        });
    }

    fn on_terminated(&mut self, node: &LookupContext, ctx: &mut Context, who: &Pid) {
        if let Some(told) = self.orphans.remove(who) {
            self.told -= usize::from(told);
            self.tell_orphans(ctx, 0);
        }
        let Some(ci) = node.unregister_activation(who.id()) else {
            return;
        };
        let released = self
            .handing_off
            .iter_mut()
            .fold(false, |any, (_, waiting)| waiting.remove(who.id()) || any);
        broadcast_terminated(node, ctx, who, ci);
        if released {
            self.announce_releases(node, ctx);
        }
    }
}

/// Tells every member of the current topology, and this node, that the activation `who` of
/// `ci` ended: an `ActivationTerminated` at their `eventstream` (Go's broadcast), which
/// evicts it from PID caches.
pub(crate) fn broadcast_terminated(
    node: &LookupContext,
    ctx: &Context,
    who: &Pid,
    ci: ClusterIdentity,
) {
    let msg = ActivationTerminated {
        pid: Some(who.to_proto()),
        cluster_identity: Some(ci),
    };
    let me = node.address();
    let mut sent_to_self = false;
    for m in node.member_list().topology().members() {
        let address = m.address();
        sent_to_self |= address == me;
        ctx.send(&Pid::new(address, EVENT_STREAM), msg.clone());
    }
    if !sent_to_self {
        ctx.send(&Pid::new(me, EVENT_STREAM), msg);
    }
}
