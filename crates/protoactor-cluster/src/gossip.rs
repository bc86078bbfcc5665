//! Gossip in protoactor-go's dialect (protoactor-go's `cluster/gossiper.go`, `gossip_actor.go`, `informer.go` and
//! `gossip_state_management.go`): the root actor `gossip` keeps a
//! [`GossipState`] (per member id, per key, a value with a sequence number), sets this node's
//! `heartbeat` every tick and `topology` on each topology change, and every
//! [`GossipConfig::interval`] sends up to [`GossipConfig::fan_out`] random peers a
//! `GossipRequest` with what they have not acknowledged yet. Incoming state is merged by
//! sequence number, as Go merges it.
//!
//! Where Go is weak, this actor does better and stays compatible:
//! * per-target watermarks advance only after the peer answered, so lost gossip is resent
//!   (Go commits them before sending);
//! * the answer to a `GossipRequest` carries the sender's missing state (Go's is empty);
//! * a heartbeat that expires blocks the member only until a fresh heartbeat arrives
//!   (Go: forever), and `blocked` ids gossiped by others are never applied, so one bad member
//!   cannot ban others; the `topology` this node gossips has `blocked` empty;
//! * graceful leave pushes `left` to every member and waits for their answers (Go: one
//!   best-effort round to three);
//! * values for this node's own id are never taken from others, and undecodable values are
//!   kept as opaque bytes: garbage in an `Any` cannot break the actor;
//! * the state lives outside the actor instance, so a restart keeps the sequence counter.

use protoactor::ContextOps;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use prost_types::Any;
use protoactor::{Actor, ActorSystem, Context, Pid, Props, Subscription};
use rand::seq::SliceRandom;

use crate::cluster::{Cluster, ClusterError};
use crate::member_list::MemberList;
use crate::proto::{
    ActorStatistics, ClusterTopology, GossipKeyValue, GossipMemberState, GossipRequest,
    GossipResponse, GossipState, Member, MemberHeartbeat,
};

/// Name of the gossip actor on every member (Go's `DefaultGossipActorName`).
pub const GOSSIP_ACTOR_NAME: &str = "gossip";
/// Key of a member's last `ClusterTopology`.
pub const TOPOLOGY_KEY: &str = "topology";
/// Key of a member's `MemberHeartbeat` (the 2024 module's spelling).
pub const HEARTBEAT_KEY: &str = "heartbeat";
/// Key set (to `google.protobuf.Empty`) by a member that leaves gracefully.
pub const LEFT_KEY: &str = "left";

const EMPTY_TYPE_URL: &str = "type.googleapis.com/google.protobuf.Empty";

/// Gossip settings; the defaults are protoactor-go's.
#[derive(Debug, Clone)]
pub struct GossipConfig {
    /// Time between two gossip rounds (Go: 300 ms).
    pub interval: Duration,
    /// Timeout of one `GossipRequest` (Go: 500 ms).
    pub request_timeout: Duration,
    /// Peers per round (Go: 3).
    pub fan_out: usize,
    /// Most member states in one request besides this node's own (Go: 50).
    pub max_send: usize,
    /// A member whose heartbeat has not advanced for this long is blocked until it does
    /// (Go: 20 s, and forever).
    pub heartbeat_expiration: Duration,
    /// How long a member that gossiped `left` stays blocked (its id never comes back: a
    /// restarted process has a new system id).
    pub left_block: Duration,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            interval: Duration::from_millis(300),
            request_timeout: Duration::from_millis(500),
            fan_out: 3,
            max_send: 50,
            heartbeat_expiration: Duration::from_secs(20),
            left_block: Duration::from_secs(3600),
        }
    }
}

/// One value taken from incoming gossip (Go's `GossipUpdate`), published on the event stream.
#[derive(Debug, Clone, PartialEq)]
pub struct GossipUpdate {
    /// The member whose state changed.
    pub member_id: String,
    /// The gossip key.
    pub key: String,
    /// The new value.
    pub value: Option<Any>,
    /// Its sequence number.
    pub sequence_number: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An `Any` holding `msg`, with the type URL Go's `anypb.New` writes.
pub fn pack<M: prost::Name>(msg: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: msg.encode_to_vec(),
    }
}

/// Merges `remote` into `local` by Go's rule (`mergeState` in `cluster/gossip_state_management.go`): a member or key not known
/// locally is taken whole, a known key only with a greater sequence number; each taken value
/// gets `now_ms` as its local timestamp and is returned as an update. Values for `own_id`
/// are never taken (only this node writes them).
pub fn merge_state(
    local: &mut GossipState,
    remote: GossipState,
    own_id: &str,
    now_ms: i64,
) -> Vec<GossipUpdate> {
    let mut updates = Vec::new();
    for (member_id, remote_member) in remote.members {
        if member_id == own_id {
            continue;
        }
        let local_member = local.members.entry(member_id.clone()).or_default();
        for (key, mut value) in remote_member.values {
            let take = match local_member.values.get(&key) {
                None => true,
                Some(old) => value.sequence_number > old.sequence_number,
            };
            if !take {
                continue;
            }
            value.local_timestamp_unix_milliseconds = now_ms;
            updates.push(GossipUpdate {
                member_id: member_id.clone(),
                key: key.clone(),
                value: value.value.clone(),
                sequence_number: value.sequence_number,
            });
            local_member.values.insert(key, value);
        }
    }
    updates
}

/// What one target has not acknowledged yet, with the watermarks to commit once it answers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Delta {
    pub(crate) state: GossipState,
    /// `(member id, highest sequence number sent)`.
    pub(crate) watermarks: Vec<(String, i64)>,
}

impl Delta {
    pub(crate) fn is_empty(&self) -> bool {
        self.state.members.is_empty()
    }
}

/// The gossip state of one node and its per-target watermarks (Go's `Informer`, minus its
/// offset bug).
#[derive(Debug)]
pub(crate) struct GossipCore {
    my_id: String,
    sequence: i64,
    state: GossipState,
    /// target id -> member id -> highest sequence number the target acknowledged.
    committed: HashMap<String, HashMap<String, i64>>,
    /// The other members of the last topology.
    others: Vec<Member>,
    max_send: usize,
}

impl GossipCore {
    pub(crate) fn new(my_id: impl Into<String>, max_send: usize) -> Self {
        GossipCore {
            my_id: my_id.into(),
            sequence: 0,
            state: GossipState::default(),
            committed: HashMap::new(),
            others: Vec::new(),
            max_send,
        }
    }

    /// Sets this node's `key`, with the next sequence number of the node's one counter.
    pub(crate) fn set_state(&mut self, key: &str, value: Any, now_ms: i64) {
        self.sequence += 1;
        let entry = GossipKeyValue {
            sequence_number: self.sequence,
            value: Some(value),
            local_timestamp_unix_milliseconds: now_ms,
        };
        self.state
            .members
            .entry(self.my_id.clone())
            .or_default()
            .values
            .insert(key.to_string(), entry);
    }

    /// Takes a new topology: the peers to gossip with, and this node's `topology` value
    /// (with `blocked` empty, so no Go member bans anyone because of it).
    pub(crate) fn update_topology(&mut self, topology: &ClusterTopology, now_ms: i64) {
        self.others = topology
            .members
            .iter()
            .filter(|m| m.id != self.my_id)
            .cloned()
            .collect();
        let live: HashSet<&str> = self.others.iter().map(|m| m.id.as_str()).collect();
        self.committed
            .retain(|target, _| live.contains(target.as_str()));
        let mut gossiped = topology.clone();
        gossiped.blocked.clear();
        self.set_state(TOPOLOGY_KEY, pack(&gossiped), now_ms);
    }

    pub(crate) fn others(&self) -> &[Member] {
        &self.others
    }

    pub(crate) fn receive(&mut self, remote: GossipState, now_ms: i64) -> Vec<GossipUpdate> {
        merge_state(&mut self.state, remote, &self.my_id, now_ms)
    }

    /// The values `target` has not acknowledged: this node's state first, then up to
    /// `max_send` other members' states; never the target's own state.
    pub(crate) fn delta_for(&self, target: &str) -> Delta {
        let committed = self.committed.get(target);
        let mut delta = Delta::default();
        let mut ids: Vec<&String> = self
            .state
            .members
            .keys()
            .filter(|id| id.as_str() != target && **id != self.my_id)
            .collect();
        ids.shuffle(&mut rand::rng());
        ids.truncate(self.max_send);
        if self.state.members.contains_key(&self.my_id) && target != self.my_id {
            ids.insert(0, &self.my_id);
        }
        for id in ids {
            let member = &self.state.members[id];
            let mark = committed.and_then(|c| c.get(id)).copied().unwrap_or(0);
            let mut out = GossipMemberState::default();
            let mut high = mark;
            for (key, value) in &member.values {
                if value.sequence_number > mark {
                    high = high.max(value.sequence_number);
                    out.values.insert(key.clone(), value.clone());
                }
            }
            if !out.values.is_empty() {
                delta.state.members.insert(id.clone(), out);
                delta.watermarks.push((id.clone(), high));
            }
        }
        delta
    }

    /// Records that `target` acknowledged `watermarks` (a later, lower commit never lowers one).
    pub(crate) fn commit(&mut self, target: &str, watermarks: &[(String, i64)]) {
        let c = self.committed.entry(target.to_string()).or_default();
        for (member, seq) in watermarks {
            let e = c.entry(member.clone()).or_insert(0);
            *e = (*e).max(*seq);
        }
    }

    /// Each member's value of `key` (Go's `GetState`).
    pub(crate) fn get_state(&self, key: &str) -> HashMap<String, GossipKeyValue> {
        self.state
            .members
            .iter()
            .filter_map(|(id, m)| m.values.get(key).map(|v| (id.clone(), v.clone())))
            .collect()
    }

    /// Members (not this one) whose heartbeat is older than `expiration`.
    pub(crate) fn expired(&self, now_ms: i64, expiration: Duration) -> HashSet<String> {
        let limit = expiration.as_millis() as i64;
        self.get_state(HEARTBEAT_KEY)
            .into_iter()
            .filter(|(id, v)| {
                *id != self.my_id && now_ms - v.local_timestamp_unix_milliseconds > limit
            })
            .map(|(id, _)| id)
            .collect()
    }

    /// Members (not this one) that gossiped `left`.
    pub(crate) fn left(&self) -> HashSet<String> {
        self.get_state(LEFT_KEY)
            .into_keys()
            .filter(|id| *id != self.my_id)
            .collect()
    }
}

/// What this node's heartbeat reports: live activations per kind.
pub type ActorCounts = Arc<dyn Fn() -> HashMap<String, i64> + Send + Sync>;

#[derive(Default)]
struct Blocks {
    expired: HashSet<String>,
    left: HashSet<String>,
}

struct Shared {
    system: ActorSystem,
    member_list: MemberList,
    config: GossipConfig,
    actor_counts: ActorCounts,
    core: Mutex<GossipCore>,
    /// Targets with a request on the way: a slow member holds only its own slot.
    in_flight: Mutex<HashSet<String>>,
    /// What this node blocked in the member list because of gossip.
    blocks: Mutex<Blocks>,
    stopped: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn publish(&self, updates: Vec<GossipUpdate>) {
        for u in updates {
            self.system.event_stream().publish(&u);
        }
    }

    fn tick(self: &Arc<Self>) {
        let now = now_ms();
        let heartbeat = MemberHeartbeat {
            actor_statistics: Some(ActorStatistics {
                actor_count: (self.actor_counts)(),
            }),
        };
        let sends = {
            let mut core = self.core.lock();
            core.set_state(HEARTBEAT_KEY, pack(&heartbeat), now);
            let mut others = core.others().to_vec();
            others.shuffle(&mut rand::rng());
            let mut in_flight = self.in_flight.lock();
            let mut sends = Vec::new();
            for m in others {
                if sends.len() >= self.config.fan_out {
                    break;
                }
                if in_flight.contains(&m.id) {
                    continue;
                }
                let delta = core.delta_for(&m.id);
                if delta.is_empty() {
                    continue;
                }
                in_flight.insert(m.id.clone());
                sends.push((m, delta));
            }
            sends
        };
        for (member, delta) in sends {
            let me = self.clone();
            self.system.runtime().spawn(async move {
                me.send_to(&member, delta).await;
            });
        }
        self.apply_membership(now);
    }

    /// Sends `delta` to `member`; on an answer commits its watermarks and merges the state
    /// the answer carries. True if the member answered.
    async fn send_to(&self, member: &Member, delta: Delta) -> bool {
        let pid = Pid::new(member.address(), GOSSIP_ACTOR_NAME);
        // Go's quirk: the *target's* id goes into from_member_id (`Informer.SendState` in `cluster/informer.go`).
        let request = GossipRequest {
            from_member_id: member.id.clone(),
            state: Some(delta.state),
        };
        let result = self
            .system
            .root()
            .request_future(&pid, request, self.config.request_timeout)
            .await;
        self.in_flight.lock().remove(&member.id);
        let response = match result {
            Ok(m) => match m.downcast_ref::<GossipResponse>() {
                Some(r) => r.clone(),
                None => {
                    tracing::warn!(member = %member.id, got = m.type_name(), "gossip: unexpected answer");
                    return false;
                }
            },
            Err(e) => {
                tracing::debug!(member = %member.id, error = %e, "gossip: request failed; resent next round");
                return false;
            }
        };
        let updates = {
            let mut core = self.core.lock();
            core.commit(&member.id, &delta.watermarks);
            response
                .state
                .map(|s| core.receive(s, now_ms()))
                .unwrap_or_default()
        };
        self.publish(updates);
        true
    }

    /// Blocks members whose heartbeat expired (until it advances again) and members that
    /// left; lifts the block of members whose heartbeat came back.
    fn apply_membership(&self, now: i64) {
        let (expired, left) = {
            let core = self.core.lock();
            (
                core.expired(now, self.config.heartbeat_expiration),
                core.left(),
            )
        };
        let (new_left, new_expired, recovered) = {
            let mut b = self.blocks.lock();
            let new_left: Vec<String> = left.difference(&b.left).cloned().collect();
            let new_expired: Vec<String> = expired
                .iter()
                .filter(|id| !b.expired.contains(*id) && !left.contains(*id))
                .cloned()
                .collect();
            let recovered: Vec<String> = b
                .expired
                .iter()
                .filter(|id| !expired.contains(*id) && !left.contains(*id))
                .cloned()
                .collect();
            b.left = left;
            b.expired = expired;
            (new_left, new_expired, recovered)
        };
        // Not under our locks: blocking publishes a topology, which this module handles.
        if !new_left.is_empty() {
            tracing::info!(members = ?new_left, "gossip: members left gracefully");
            self.member_list
                .block(&new_left, Some(self.config.left_block));
        }
        if !new_expired.is_empty() {
            tracing::info!(members = ?new_expired, "gossip: heartbeat expired");
            self.member_list.block(&new_expired, None);
        }
        if !recovered.is_empty() {
            tracing::info!(members = ?recovered, "gossip: heartbeat back");
            self.member_list.unblock(&recovered);
        }
    }

    /// Merges an incoming request and builds the answer: the state the sender lacks.
    fn on_request(&self, request: GossipRequest, sender: Option<&Pid>) -> GossipResponse {
        let (updates, delta) = {
            let mut core = self.core.lock();
            let updates = request
                .state
                .map(|s| core.receive(s, now_ms()))
                .unwrap_or_default();
            // Go's from_member_id names the receiver, so the sender is found by address.
            let from = sender.and_then(|p| {
                core.others()
                    .iter()
                    .find(|m| m.address() == p.address())
                    .map(|m| m.id.clone())
            });
            let delta = from.map(|id| core.delta_for(&id)).filter(|d| !d.is_empty());
            (updates, delta)
        };
        self.publish(updates);
        GossipResponse {
            state: delta.map(|d| d.state),
        }
    }
}

/// The `gossip` actor: answers `GossipRequest`s. Its state lives in [`Shared`], so a restart
/// keeps it.
struct GossipActor(Arc<Shared>);

impl Actor for GossipActor {
    fn receive(&mut self, ctx: &mut Context) {
        if let Some(request) = ctx.take_message::<GossipRequest>() {
            let response = self.0.on_request(request, ctx.sender());
            if ctx.sender().is_some() {
                ctx.respond(response);
            }
        }
    }
}

/// This node's gossip: the `gossip` actor and the round loop. Cheap to clone.
#[derive(Clone)]
pub struct Gossiper {
    shared: Arc<Shared>,
    pid: Pid,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    subscription: Arc<Mutex<Option<Subscription>>>,
}

impl Gossiper {
    /// Spawns the `gossip` actor of the node whose member id is `member_list.self_id()`, and
    /// starts the rounds. Gossip follows the member list's topologies from now on.
    pub fn start(
        system: &ActorSystem,
        member_list: MemberList,
        config: GossipConfig,
        actor_counts: ActorCounts,
    ) -> Result<Gossiper, protoactor::SpawnError> {
        let shared = Arc::new(Shared {
            system: system.clone(),
            core: Mutex::new(GossipCore::new(member_list.self_id(), config.max_send)),
            member_list,
            config,
            actor_counts,
            in_flight: Mutex::new(HashSet::new()),
            blocks: Mutex::new(Blocks::default()),
            stopped: std::sync::atomic::AtomicBool::new(false),
        });
        let s = shared.clone();
        let pid = system.root().spawn_named(
            &Props::from_producer(move || GossipActor(s.clone())),
            GOSSIP_ACTOR_NAME,
        )?;
        // The current topology first, then every change.
        let s = shared.clone();
        let subscription = system
            .event_stream()
            .subscribe_to::<ClusterTopology, _>(move |t| {
                s.core.lock().update_topology(t, now_ms())
            });
        {
            let t = shared.member_list.topology();
            if !t.is_empty() {
                let current = ClusterTopology {
                    topology_hash: t.hash(),
                    members: t.members().cloned().collect(),
                    ..Default::default()
                };
                shared.core.lock().update_topology(&current, now_ms());
            }
        }
        let s = shared.clone();
        let interval = s.config.interval;
        let task = system.runtime().spawn(async move {
            let mut iv = tokio::time::interval(interval);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                iv.tick().await;
                // Also ends when the actor was stopped without `stop` (a failed start).
                if s.stopped.load(std::sync::atomic::Ordering::Acquire)
                    || s.system.is_shut_down()
                    || s.system.registry().get_local(GOSSIP_ACTOR_NAME).is_none()
                {
                    break;
                }
                s.tick();
            }
        });
        Ok(Gossiper {
            shared,
            pid,
            tasks: Arc::new(Mutex::new(vec![task.abort_handle()])),
            subscription: Arc::new(Mutex::new(Some(subscription))),
        })
    }

    /// The `gossip` actor.
    pub fn pid(&self) -> &Pid {
        &self.pid
    }

    /// Sets this node's `key` to `value` (spread from the next round on).
    pub fn set_state<M: prost::Name>(&self, key: &str, value: &M) {
        self.shared
            .core
            .lock()
            .set_state(key, pack(value), now_ms());
    }

    /// Every member's value of `key`, by member id.
    pub fn get_state(&self, key: &str) -> HashMap<String, GossipKeyValue> {
        self.shared.core.lock().get_state(key)
    }

    /// Leaves gracefully: sets `left` and pushes this node's state to **every** member of
    /// the topology, retrying each one up to three times within `timeout`. Returns the ids of
    /// the members that did not acknowledge.
    pub async fn leave(&self, timeout: Duration) -> Vec<String> {
        let s = &self.shared;
        let others = {
            let mut core = s.core.lock();
            core.set_state(
                LEFT_KEY,
                Any {
                    type_url: EMPTY_TYPE_URL.to_string(),
                    value: Vec::new(),
                },
                now_ms(),
            );
            core.others().to_vec()
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let pushes = others.into_iter().map(|m| {
            let s = s.clone();
            async move {
                for _ in 0..3 {
                    if tokio::time::Instant::now() >= deadline {
                        break;
                    }
                    let delta = s.core.lock().delta_for(&m.id);
                    if delta.is_empty() || s.send_to(&m, delta).await {
                        return None;
                    }
                }
                Some(m.id)
            }
        });
        let mut set = tokio::task::JoinSet::new();
        for p in pushes {
            set.spawn(p);
        }
        let mut missed = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(Some(id)) = r {
                missed.push(id);
            }
        }
        missed
    }

    /// Stops the rounds and the `gossip` actor.
    pub fn stop(&self) {
        self.shared
            .stopped
            .store(true, std::sync::atomic::Ordering::Release);
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
        if let Some(sub) = self.subscription.lock().take() {
            self.shared.system.event_stream().unsubscribe(&sub);
        }
        self.shared.system.root().stop(&self.pid);
    }
}

// ------------------------------------------------------------------ hooks of the cluster

/// Spawns the gossip actor (named [`GOSSIP_ACTOR_NAME`]) and starts the gossip loop. Called
/// once by [`Cluster::start_member`] after the identity lookup, before the provider.
pub fn start(cluster: &Cluster) -> Result<Pid, ClusterError> {
    let c = cluster.config();
    let config = GossipConfig {
        interval: c.gossip_interval,
        request_timeout: c.gossip_request_timeout,
        fan_out: c.gossip_fan_out,
        max_send: c.gossip_max_send,
        heartbeat_expiration: c.heartbeat_expiration,
        left_block: c.block_duration,
    };
    // Weak: the gossiper lives in the system's extensions, which the cluster holds.
    let counted = cluster.downgrade();
    let gossiper = Gossiper::start(
        cluster.system(),
        cluster.member_list().clone(),
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
    cluster.system().set_extension(Arc::new(gossiper));
    Ok(pid)
}

/// Graceful leave: sets the `left` key and pushes it to every member, before the provider
/// deregisters. Called first by [`Cluster::shutdown`] with `graceful = true`.
pub async fn leave(cluster: &Cluster) {
    if let Some(g) = cluster.system().extension::<Gossiper>() {
        let missed = g.leave(LEAVE_TIMEOUT).await;
        if !missed.is_empty() {
            tracing::info!(members = ?missed, "gossip: these members did not acknowledge the leave");
        }
    }
}

/// Stops the gossip loop and the actor. Called by [`Cluster::shutdown`] after the grains
/// stopped.
pub async fn stop(cluster: &Cluster) {
    if let Some(g) = cluster.system().extension::<Gossiper>() {
        g.stop();
    }
}

/// The longest a graceful leave waits for the members to acknowledge it.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use prost::Message as _;
    use std::collections::BTreeMap;

    fn kv(seq: i64, tag: &str) -> GossipKeyValue {
        GossipKeyValue {
            sequence_number: seq,
            value: Some(Any {
                type_url: "type.googleapis.com/google.protobuf.Empty".into(),
                value: tag.as_bytes().to_vec(),
            }),
            local_timestamp_unix_milliseconds: 0,
        }
    }

    fn state(entries: &[(&str, &str, i64)]) -> GossipState {
        let mut s = GossipState::default();
        for (m, k, seq) in entries {
            s.members
                .entry(m.to_string())
                .or_default()
                .values
                .insert(k.to_string(), kv(*seq, &format!("{m}/{k}/{seq}")));
        }
        s
    }

    /// (member, key) -> sequence number.
    fn seqs(s: &GossipState) -> BTreeMap<(String, String), i64> {
        s.members
            .iter()
            .flat_map(|(m, ms)| {
                ms.values
                    .iter()
                    .map(move |(k, v)| ((m.clone(), k.clone()), v.sequence_number))
            })
            .collect()
    }

    #[test]
    fn merge_takes_new_members_new_keys_and_higher_sequence_numbers_only() {
        let mut local = state(&[("a", "heartbeat", 5), ("a", "topology", 2)]);
        let updates = merge_state(
            &mut local,
            state(&[
                ("a", "heartbeat", 5), // equal: ignored, timestamp kept
                ("a", "topology", 3),  // higher: taken
                ("a", "left", 1),      // new key: taken
                ("b", "heartbeat", 1), // new member: taken
            ]),
            "me",
            777,
        );
        let mut got: Vec<(String, String, i64)> = updates
            .iter()
            .map(|u| (u.member_id.clone(), u.key.clone(), u.sequence_number))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("a".into(), "left".into(), 1),
                ("a".into(), "topology".into(), 3),
                ("b".into(), "heartbeat".into(), 1)
            ]
        );
        let a = &local.members["a"].values;
        assert_eq!(a["heartbeat"].local_timestamp_unix_milliseconds, 0);
        assert_eq!(a["topology"].local_timestamp_unix_milliseconds, 777);
        assert_eq!(
            local.members["b"].values["heartbeat"].local_timestamp_unix_milliseconds,
            777
        );
    }

    #[test]
    fn own_state_is_never_taken_from_others() {
        let mut core = GossipCore::new("me", 50);
        core.set_state(HEARTBEAT_KEY, Any::default(), 1);
        let updates = core.receive(state(&[("me", "left", 99), ("me", "heartbeat", 50)]), 2);
        assert!(updates.is_empty());
        assert!(core.left().is_empty());
        assert_eq!(core.get_state(HEARTBEAT_KEY)["me"].sequence_number, 1);
    }

    #[test]
    fn watermarks_advance_only_on_commit_so_lost_gossip_is_resent() {
        let mut core = GossipCore::new("me", 50);
        core.set_state(TOPOLOGY_KEY, Any::default(), 1);
        core.set_state(HEARTBEAT_KEY, Any::default(), 1);
        core.receive(state(&[("c", "heartbeat", 4), ("t", "heartbeat", 9)]), 1);
        let d1 = core.delta_for("t");
        assert_eq!(
            seqs(&d1.state).into_keys().collect::<Vec<_>>(),
            [
                ("c".into(), "heartbeat".into()),
                ("me".into(), "heartbeat".into()),
                ("me".into(), "topology".into())
            ],
            "everything but the target's own state"
        );
        // The request got lost: nothing committed, the next delta is the same.
        let d2 = core.delta_for("t");
        assert_eq!(seqs(&d1.state), seqs(&d2.state));
        core.commit("t", &d2.watermarks);
        assert!(core.delta_for("t").is_empty());
        // Only what changed since goes next; other targets are unaffected.
        core.set_state(HEARTBEAT_KEY, Any::default(), 2);
        assert_eq!(
            seqs(&core.delta_for("t").state),
            BTreeMap::from([(("me".into(), "heartbeat".into()), 3)])
        );
        // "c" acknowledged nothing: our two keys and t's heartbeat, not its own state.
        assert_eq!(seqs(&core.delta_for("c").state).len(), 3);
        // A late commit of an older delta never lowers a watermark.
        core.commit("t", &[("me".into(), 1)]);
        assert_eq!(seqs(&core.delta_for("t").state).len(), 1);
    }

    #[test]
    fn expiry_and_left_are_read_from_the_state() {
        let mut core = GossipCore::new("me", 50);
        core.set_state(HEARTBEAT_KEY, Any::default(), 0);
        core.receive(state(&[("old", "heartbeat", 1)]), 1_000);
        core.receive(
            state(&[("fresh", "heartbeat", 1), ("gone", "left", 3)]),
            20_000,
        );
        let expired = core.expired(21_500, Duration::from_secs(20));
        assert_eq!(expired, HashSet::from(["old".to_string()]));
        assert_eq!(core.left(), HashSet::from(["gone".to_string()]));
        // A newer heartbeat refreshes the timestamp: no longer expired.
        core.receive(state(&[("old", "heartbeat", 2)]), 21_000);
        assert!(core.expired(21_500, Duration::from_secs(20)).is_empty());
    }

    #[test]
    fn the_gossiped_topology_never_blocks_anyone() {
        let mut core = GossipCore::new("me", 50);
        let t = ClusterTopology {
            topology_hash: 1,
            members: vec![
                Member::new("h", 1, "me", ["k"]),
                Member::new("h", 2, "b", ["k"]),
            ],
            blocked: vec!["b".into()],
            ..Default::default()
        };
        core.update_topology(&t, 0);
        let v = &core.get_state(TOPOLOGY_KEY)["me"];
        let sent = ClusterTopology::decode(&v.value.as_ref().unwrap().value[..]).unwrap();
        assert!(sent.blocked.is_empty());
        assert_eq!(sent.members.len(), 2);
        assert_eq!(
            v.value.as_ref().unwrap().type_url,
            "type.googleapis.com/cluster.ClusterTopology"
        );
        assert_eq!(core.others().len(), 1);
    }

    fn shared_for_test(system: &ActorSystem, ml: MemberList, config: GossipConfig) -> Arc<Shared> {
        Arc::new(Shared {
            system: system.clone(),
            core: Mutex::new(GossipCore::new(ml.self_id(), config.max_send)),
            member_list: ml,
            config,
            actor_counts: Arc::new(HashMap::new),
            in_flight: Mutex::new(HashSet::new()),
            blocks: Mutex::new(Blocks::default()),
            stopped: std::sync::atomic::AtomicBool::new(false),
        })
    }

    #[test]
    fn expired_heartbeat_blocks_until_a_fresh_one_and_left_blocks_for_the_configured_time() {
        let system = ActorSystem::new();
        let ml = MemberList::new(&system, "me");
        ml.update_cluster_topology(vec![
            Member::new("h", 1, "me", ["k"]),
            Member::new("h", 2, "b", ["k"]),
            Member::new("h", 3, "c", ["k"]),
        ]);
        let config = GossipConfig {
            heartbeat_expiration: Duration::from_secs(20),
            left_block: Duration::from_secs(3600),
            ..GossipConfig::default()
        };
        let s = shared_for_test(&system, ml.clone(), config);
        s.core
            .lock()
            .receive(state(&[("b", "heartbeat", 1), ("c", "heartbeat", 1)]), 0);
        s.apply_membership(10_000);
        assert_eq!(ml.members().len(), 3);
        s.apply_membership(20_001);
        assert!(ml.is_blocked("b") && ml.is_blocked("c"));
        assert_eq!(ml.members().len(), 1);
        // b's heartbeat advances again: readmitted (Go: blocked forever).
        s.core
            .lock()
            .receive(state(&[("b", "heartbeat", 2)]), 20_500);
        s.apply_membership(21_000);
        assert!(!ml.is_blocked("b"));
        // The provider lists it again: it is a member again.
        ml.update_cluster_topology(vec![
            Member::new("h", 1, "me", ["k"]),
            Member::new("h", 2, "b", ["k"]),
            Member::new("h", 3, "c", ["k"]),
        ]);
        assert_eq!(
            ml.members()
                .iter()
                .map(|m| m.id.as_str())
                .collect::<Vec<_>>(),
            ["b", "me"]
        );
        // b leaves gracefully: blocked, and a later heartbeat does not readmit it.
        s.core.lock().receive(state(&[("b", "left", 3)]), 21_000);
        s.apply_membership(21_100);
        assert!(ml.is_blocked("b"));
        s.core
            .lock()
            .receive(state(&[("b", "heartbeat", 4)]), 21_200);
        s.apply_membership(21_300);
        assert!(ml.is_blocked("b"));
        system.shutdown();
    }

    #[test]
    fn a_blocked_list_gossiped_by_another_member_blocks_nobody() {
        // Go applies every gossiped `ClusterTopology.blocked` cluster-wide, forever
        // (`cluster/member_list.go`).
        let system = ActorSystem::new();
        let ml = MemberList::new(&system, "me");
        let members = vec![
            Member::new("h", 1, "me", ["k"]),
            Member::new("h", 2, "b", ["k"]),
            Member::new("h", 3, "evil", ["k"]),
        ];
        ml.update_cluster_topology(members.clone());
        let s = shared_for_test(&system, ml.clone(), GossipConfig::default());
        let evil_topology = ClusterTopology {
            members,
            blocked: vec!["b".into(), "me".into()],
            ..Default::default()
        };
        let mut st = GossipState::default();
        st.members.entry("evil".into()).or_default().values.insert(
            TOPOLOGY_KEY.into(),
            GossipKeyValue {
                sequence_number: 1,
                value: Some(pack(&evil_topology)),
                local_timestamp_unix_milliseconds: 0,
            },
        );
        s.on_request(
            GossipRequest {
                from_member_id: "me".into(),
                state: Some(st),
            },
            None,
        );
        s.apply_membership(now_ms());
        assert!(!ml.is_blocked("b"));
        assert_eq!(ml.members().len(), 3);
        system.shutdown();
    }

    fn node() -> (ActorSystem, Arc<protoactor_remote::Remote>) {
        let system = ActorSystem::new();
        let remote =
            protoactor_remote::Remote::start(&system, protoactor_remote::RemoteConfig::local())
                .unwrap();
        crate::cluster::register_cluster_types(remote.serialization());
        (system, remote)
    }

    fn member_of(system: &ActorSystem, remote: &protoactor_remote::Remote) -> Member {
        let (host, port) = crate::member::split_address(remote.address()).unwrap();
        Member::new(host, port, system.id(), ["k"])
    }

    /// Polls `check` until it holds or 30 s pass (the gossip rounds are the events).
    fn eventually(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !check() {
            assert!(std::time::Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn gossip_lost_while_a_member_was_unreachable_is_resent_and_a_dead_member_blocks_nobody() {
        let (sa, ra) = node();
        let (sb, rb) = node();
        let a = member_of(&sa, &ra);
        let b = member_of(&sb, &rb);
        // A member nobody listens for: every request to it fails.
        let dead = Member::new("127.0.0.1", free_port(), "dead", ["k"]);
        let all = vec![a.clone(), b.clone(), dead.clone()];
        let mla = MemberList::new(&sa, a.id.clone());
        let fast = GossipConfig {
            interval: Duration::from_millis(50),
            request_timeout: Duration::from_millis(300),
            ..GossipConfig::default()
        };
        let ga = Gossiper::start(&sa, mla.clone(), fast.clone(), Arc::new(HashMap::new)).unwrap();
        // A's topology is set once, now, while B has no gossip actor: those sends fail.
        mla.update_cluster_topology(all.clone());
        let a_topology_seq = ga.get_state(TOPOLOGY_KEY)[&a.id].sequence_number;
        eventually("A tried B", || {
            ga.get_state(HEARTBEAT_KEY)
                .get(&a.id)
                .is_some_and(|v| v.sequence_number > a_topology_seq + 5)
        });
        let mlb = MemberList::new(&sb, b.id.clone());
        mlb.update_cluster_topology(all);
        let gb = Gossiper::start(&sb, mlb, fast, Arc::new(HashMap::new)).unwrap();
        // Go never resends a value once offered; here A's old topology still reaches B,
        // and A's heartbeats keep coming although "dead" never answers.
        eventually("B got A's topology", || {
            gb.get_state(TOPOLOGY_KEY)
                .get(&a.id)
                .is_some_and(|v| v.sequence_number == a_topology_seq)
        });
        let hb = gb.get_state(HEARTBEAT_KEY)[&a.id].sequence_number;
        eventually("A's heartbeats keep coming", || {
            gb.get_state(HEARTBEAT_KEY)[&a.id].sequence_number > hb + 3
        });
        // And B's state reaches A.
        eventually("A got B's topology", || {
            ga.get_state(TOPOLOGY_KEY).contains_key(&b.id)
        });
        ga.stop();
        gb.stop();
        ra.shutdown();
        rb.shutdown();
        sa.shutdown();
        sb.shutdown();
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn garbage_in_an_any_does_not_kill_the_gossip_actor() {
        let system = ActorSystem::new();
        let ml = MemberList::new(&system, "me");
        let g =
            Gossiper::start(&system, ml, GossipConfig::default(), Arc::new(HashMap::new)).unwrap();
        let garbage = |seq: i64, url: &str| GossipKeyValue {
            sequence_number: seq,
            value: Some(Any {
                type_url: url.into(),
                value: vec![0xff, 0xff, 0xff, 0x07, 0x00, 0x9c],
            }),
            local_timestamp_unix_milliseconds: -5,
        };
        let mut bad = GossipState::default();
        let values = &mut bad.members.entry("x".into()).or_default().values;
        values.insert(
            TOPOLOGY_KEY.into(),
            garbage(1, "type.googleapis.com/cluster.ClusterTopology"),
        );
        values.insert(
            HEARTBEAT_KEY.into(),
            garbage(2, "type.googleapis.com/cluster.MemberHeartbeat"),
        );
        values.insert(LEFT_KEY.into(), garbage(3, "nope"));
        values.insert("no-value".into(), GossipKeyValue::default());
        bad.members
            .insert(String::new(), GossipMemberState::default());
        let updates = Arc::new(Mutex::new(Vec::new()));
        let u = updates.clone();
        system
            .event_stream()
            .subscribe_to::<GossipUpdate, _>(move |x| u.lock().push(x.key.clone()));
        let ask = |state: Option<GossipState>| {
            system
                .root()
                .request_future(
                    g.pid(),
                    GossipRequest {
                        from_member_id: "me".into(),
                        state,
                    },
                    Duration::from_secs(5),
                )
                .result_as::<GossipResponse>()
        };
        ask(Some(bad)).expect("answered the garbage");
        ask(None).expect("answered an empty request");
        // Still the same actor, still merging: the garbage is kept as opaque bytes.
        ask(Some(state(&[("y", "heartbeat", 1)]))).expect("answered after the garbage");
        let started = system.registry().get_local(GOSSIP_ACTOR_NAME).is_some();
        assert!(started);
        assert_eq!(g.get_state(HEARTBEAT_KEY)["x"].sequence_number, 2);
        assert!(g.get_state(HEARTBEAT_KEY).contains_key("y"));
        assert_eq!(updates.lock().len(), 5);
        g.stop();
        system.shutdown();
    }

    fn arb_state() -> impl Strategy<Value = Vec<(u8, u8, i64)>> {
        proptest::collection::vec((0u8..4, 0u8..3, 0i64..6), 0..12)
    }

    fn build(entries: &[(u8, u8, i64)]) -> GossipState {
        // One value per (member, key, seq): two states agree on a value with the same number,
        // as real gossip does (only the owner writes, once per number).
        let mut s = GossipState::default();
        for (m, k, seq) in entries {
            let (m, k) = (format!("m{m}"), format!("k{k}"));
            let e = s.members.entry(m.clone()).or_default();
            let keep = e.values.get(&k).is_some_and(|v| v.sequence_number >= *seq);
            if !keep {
                e.values
                    .insert(k.clone(), kv(*seq, &format!("{m}/{k}/{seq}")));
            }
        }
        s
    }

    fn values(s: &GossipState) -> BTreeMap<(String, String), (i64, Vec<u8>)> {
        s.members
            .iter()
            .flat_map(|(m, ms)| {
                ms.values.iter().map(move |(k, v)| {
                    (
                        (m.clone(), k.clone()),
                        (v.sequence_number, v.value.clone().unwrap().value),
                    )
                })
            })
            .collect()
    }

    proptest! {
        #[test]
        fn merge_keeps_the_highest_sequence_number_of_every_value(
            a in arb_state(), b in arb_state(), c in arb_state()
        ) {
            let (sa, sb, sc) = (build(&a), build(&b), build(&c));
            // Order does not matter.
            let mut x = sa.clone();
            merge_state(&mut x, sb.clone(), "m0", 1);
            merge_state(&mut x, sc.clone(), "m0", 1);
            let mut y = sa.clone();
            merge_state(&mut y, sc.clone(), "m0", 1);
            merge_state(&mut y, sb.clone(), "m0", 1);
            prop_assert_eq!(values(&x), values(&y));
            // Every value is the max of the inputs (own member m0: only the local one).
            for (key, (seq, _)) in values(&x) {
                let inputs: Vec<i64> = if key.0 == "m0" {
                    values(&sa).get(&key).map(|v| v.0).into_iter().collect()
                } else {
                    [&sa, &sb, &sc].iter().filter_map(|s| values(s).get(&key).map(|v| v.0)).collect()
                };
                prop_assert_eq!(Some(seq), inputs.iter().copied().max());
            }
            // Nothing of the inputs is lost (besides others' values for our own id).
            for s in [&sb, &sc] {
                for key in values(s).keys() {
                    if key.0 != "m0" {
                        prop_assert!(values(&x).contains_key(key));
                    }
                }
            }
            // Merging again changes nothing and reports nothing.
            let before = values(&x);
            let again = merge_state(&mut x, sb.clone(), "m0", 2);
            prop_assert!(again.is_empty());
            prop_assert_eq!(before, values(&x));
        }

        #[test]
        fn merge_reports_exactly_the_values_it_took(a in arb_state(), b in arb_state()) {
            let (sa, sb) = (build(&a), build(&b));
            let mut x = sa.clone();
            let updates = merge_state(&mut x, sb.clone(), "m0", 1);
            let before = values(&sa);
            let after = values(&x);
            let changed: BTreeMap<(String, String), i64> = after
                .iter()
                .filter(|(k, v)| before.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.0))
                .collect();
            let reported: BTreeMap<(String, String), i64> = updates
                .iter()
                .map(|u| ((u.member_id.clone(), u.key.clone()), u.sequence_number))
                .collect();
            prop_assert_eq!(updates.len(), reported.len());
            prop_assert_eq!(changed, reported);
        }
    }
}
