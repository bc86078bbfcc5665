//! The `gossip` actor and the rounds: every tick this node's heartbeat is set and up to
//! `fan_out` random peers get what they have not acknowledged; incoming requests are merged
//! and answered with what the sender lacks; a graceful leave pushes `left` to everyone.

use protoactor::ContextOps;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prost_types::Any;
use protoactor::{Actor, ActorSystem, Context, Pid, Props, Subscription};
use rand::seq::SliceRandom;

use super::auth::{GossipSecret, Signing};
use super::heartbeat::Expiry;
use super::state::{Delta, GossipCore, GossipLimits, GossipRejections, GossipUpdate};
use super::wire::{now_ms, pack, EMPTY_TYPE_URL, GOSSIP_ACTOR_NAME, HEARTBEAT_KEY, LEFT_KEY};
use crate::error::ClusterError;
use crate::member_list::MemberList;
use crate::proto::{
    ActorStatistics, ClusterTopology, GossipKeyValue, GossipRequest, GossipResponse, Member,
    MemberHeartbeat,
};

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
    /// Bounds on what gossip takes and sends.
    pub limits: GossipLimits,
    /// With a secret, this node signs its values and takes only signed ones (Rust-only
    /// clusters; see [`GossipSecret`]).
    pub secret: Option<GossipSecret>,
    /// With member signatures (mutual TLS, Rust-only clusters), this node signs its values
    /// with its TLS key, publishes its certificate, and takes a member's values only if
    /// signed by the key of its certificate ([`MemberSignatures`](super::MemberSignatures)).
    /// Not together with `secret`.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub member_signatures: Option<Arc<super::certs::MemberSignatures>>,
    /// Without a secret or member signatures: a listed member joins this node's topology only once its own
    /// gossip reached this node directly (a request from its address, or its answer).
    pub admission: bool,
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
            limits: GossipLimits::default(),
            secret: None,
            #[cfg(feature = "tls")]
            member_signatures: None,
            admission: false,
        }
    }
}

impl GossipConfig {
    /// How this node signs its values, if it does (member signatures win over a secret;
    /// the cluster refuses a config with both).
    fn signing(&self) -> Option<Signing> {
        #[cfg(feature = "tls")]
        if let Some(c) = &self.member_signatures {
            return Some(Signing::Certs(c.clone()));
        }
        self.secret.clone().map(Signing::Secret)
    }
}

/// The gossip state of node `self_id` with `config`'s limits and signing; with member
/// signatures, this node's certificate is its first value.
fn new_core(self_id: &str, config: &GossipConfig) -> GossipCore {
    let mut core = GossipCore::with_limits(self_id, config.max_send, config.limits.clone());
    core.set_signing(config.signing());
    #[cfg(feature = "tls")]
    if let Some(c) = &config.member_signatures {
        core.set_state(super::certs::CERT_KEY, c.certificate_value(), now_ms());
    }
    core
}

/// What this node's heartbeat reports: live activations per kind.
pub type ActorCounts = Arc<dyn Fn() -> HashMap<String, i64> + Send + Sync>;

struct Shared {
    system: ActorSystem,
    member_list: MemberList,
    config: GossipConfig,
    actor_counts: ActorCounts,
    core: Mutex<GossipCore>,
    /// Targets with a request on the way: a slow member holds only its own slot.
    in_flight: Mutex<HashSet<String>>,
    /// What this node blocked in the member list because of gossip.
    expiry: Expiry,
    stopped: std::sync::atomic::AtomicBool,
    /// The rejections last logged, and when (one warning a minute at most, whatever the
    /// flood; with etcd, Go members' gossip about their system ids is dropped all the time).
    reported: Mutex<(GossipRejections, Option<std::time::Instant>)>,
}

impl Shared {
    /// True if listed members join the topology only once admitted (a secret, or direct
    /// admission).
    fn requires_admission(&self) -> bool {
        self.signs() || self.config.admission
    }

    /// True if values are signed (a secret or member signatures).
    fn signs(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.config.member_signatures.is_some() {
            return true;
        }
        self.config.secret.is_some()
    }

    /// Direct admission (no secret): admits `id`, whose own gossip just arrived over this
    /// node's transport: a request sent from its listed address, or its answer to this
    /// node's request to that address. With mutual TLS each proves that it holds a
    /// certificate of the CA (the answer proves both directions: this node dialed its
    /// address and verified its certificate, and it dialed back with its own); without TLS,
    /// that it speaks gossip and is reachable. Values relayed by others never admit: without
    /// a secret any member may write values about any other, so a relayed heartbeat proves
    /// nothing about the member, and what counts is whether *this* node's transport reaches
    /// it. A request's sender address is the sender's claim: under mutual TLS only a holder
    /// of a CA certificate can make it, and one already may write any unsigned value.
    fn admit_direct(&self, id: &str) {
        if self.config.admission && !self.signs() {
            self.member_list.admit([id]);
        }
    }

    fn publish(&self, updates: Vec<GossipUpdate>) {
        if self.signs() {
            // Every value taken carried its member's valid signature.
            self.member_list
                .admit(updates.iter().map(|u| u.member_id.as_str()));
        }
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
            // A member that left heartbeats no more: `left` stays its last value, so the
            // others do not take a later heartbeat as proof that the `left` was forged.
            if !core.has_left() {
                core.set_state(HEARTBEAT_KEY, pack(&heartbeat), now);
            }
            core.prune(&|id| self.member_list.is_listed(id));
            self.pick_targets(&mut core)
        };
        for (member, delta) in sends {
            let me = self.clone();
            self.system.runtime().spawn(async move {
                me.send_to(&member, delta).await;
            });
        }
        self.apply_membership(now);
        self.report_rejections();
    }

    /// This round's targets and what each lacks: up to `fan_out` members of the topology
    /// and, when admission is required, up to `fan_out` listed members not admitted yet
    /// (they are admitted once their signed values, or their answers, arrive). Separate
    /// slots: listed members that never answer cannot crowd out the admitted ones.
    fn pick_targets(&self, core: &mut GossipCore) -> Vec<(Member, Delta)> {
        let mut admitted = core.others().to_vec();
        let mut pending = Vec::new();
        if self.requires_admission() {
            let me = self.member_list.self_id();
            pending = self.member_list.listed_members();
            pending.retain(|m| m.id != me && !admitted.iter().any(|a| a.id == m.id));
        }
        let mut in_flight = self.in_flight.lock();
        let mut sends = Vec::new();
        for group in [&mut admitted, &mut pending] {
            group.shuffle(&mut rand::rng());
            let mut picked = 0;
            for m in group.drain(..) {
                if picked >= self.config.fan_out {
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
                picked += 1;
            }
        }
        sends
    }

    /// Logs the rejection counters when they changed since the last round.
    fn report_rejections(&self) {
        let now = self.core.lock().rejections();
        let mut last = self.reported.lock();
        let due = last
            .1
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
        if now != last.0 && due {
            tracing::warn!(rejections = ?now, "gossip: values refused or corrected (forged or over the limits)");
            *last = (now, Some(std::time::Instant::now()));
        }
    }

    /// Sends `delta` to `member`; on an answer commits its watermarks and merges the state
    /// the answer carries. True if the member answered.
    async fn send_to(&self, member: &Member, delta: Delta) -> bool {
        let pid = Pid::new(member.address(), GOSSIP_ACTOR_NAME);
        // Go's quirk: the *target's* id goes into from_member_id (`Informer.SendState` in
        // `cluster/informer.go`).
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
        self.admit_direct(&member.id);
        let updates = {
            let mut core = self.core.lock();
            core.commit(&member.id, &delta.watermarks);
            core.commit_own(&member.id, response.state.as_ref());
            response
                .state
                .map(|s| core.receive(s, now_ms(), &|id| self.member_list.is_listed(id)))
                .unwrap_or_default()
        };
        self.publish(updates);
        true
    }

    /// Applies gossip's blocks to the member list ([`Expiry::apply`]).
    fn apply_membership(&self, now: i64) {
        self.expiry.apply(&self.core, &self.member_list, now)
    }

    /// Merges an incoming request and builds the answer: the state the sender lacks. A
    /// request from an address the provider does not list is dropped whole (Go merges it).
    fn on_request(&self, request: GossipRequest, sender: Option<&Pid>) -> GossipResponse {
        // Go's from_member_id names the receiver, so the sender is found by address.
        let Some(from) = sender.and_then(|p| self.member_list.listed_at(p.address())) else {
            self.core.lock().count_unknown_sender();
            tracing::debug!(sender = ?sender.map(|p| p.to_string()), "gossip: request from a sender the provider does not list; dropped");
            return GossipResponse::default();
        };
        self.admit_direct(&from);
        let (updates, delta) = {
            let mut core = self.core.lock();
            core.commit_own(&from, request.state.as_ref());
            let updates = request
                .state
                .map(|s| core.receive(s, now_ms(), &|id| self.member_list.is_listed(id)))
                .unwrap_or_default();
            let delta = Some(core.delta_for(&from)).filter(|d| !d.is_empty());
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
            core: Mutex::new(new_core(member_list.self_id(), &config)),
            expiry: Expiry::new(config.heartbeat_expiration, config.left_block),
            member_list,
            config,
            actor_counts,
            in_flight: Mutex::new(HashSet::new()),
            stopped: std::sync::atomic::AtomicBool::new(false),
            reported: Mutex::new((GossipRejections::default(), None)),
        });
        let s = shared.clone();
        let pid = system.root().spawn_named(
            &Props::from_producer(move || GossipActor(s.clone())),
            GOSSIP_ACTOR_NAME,
        )?;
        if shared.requires_admission() {
            shared.member_list.require_admission();
        }
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

    /// Sets this node's `key` to `value` (spread from the next round on). A value over
    /// [`GossipLimits::max_value_bytes`] is refused: the other members would drop it.
    pub fn set_state<M: prost::Name>(&self, key: &str, value: &M) -> Result<(), ClusterError> {
        let packed = pack(value);
        let limit = self.shared.config.limits.max_value_bytes;
        let bytes = prost::Message::encoded_len(&packed);
        if bytes > limit {
            return Err(ClusterError::GossipValueTooLarge {
                key: key.to_string(),
                bytes,
                limit,
            });
        }
        self.shared.core.lock().set_state(key, packed, now_ms());
        Ok(())
    }

    /// The gossip state this node keeps: member states, and bytes of the values taken from
    /// others (bounded by [`GossipLimits`]).
    pub fn state_size(&self) -> (usize, usize) {
        self.shared.core.lock().size()
    }

    /// What this node refused or corrected in the gossip it received, by reason.
    pub fn rejections(&self) -> GossipRejections {
        self.shared.core.lock().rejections()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::state::tests::state;
    use crate::gossip::wire::TOPOLOGY_KEY;
    use crate::proto::{GossipMemberState, GossipState};

    fn shared_for_test(system: &ActorSystem, ml: MemberList, config: GossipConfig) -> Arc<Shared> {
        Arc::new(Shared {
            system: system.clone(),
            core: Mutex::new(new_core(ml.self_id(), &config)),
            expiry: Expiry::new(config.heartbeat_expiration, config.left_block),
            member_list: ml,
            config,
            actor_counts: Arc::new(HashMap::new),
            in_flight: Mutex::new(HashSet::new()),
            stopped: std::sync::atomic::AtomicBool::new(false),
            reported: Mutex::new((GossipRejections::default(), None)),
        })
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
                signature: Vec::new(),
            },
        );
        let request = |st: GossipState| GossipRequest {
            from_member_id: "me".into(),
            state: Some(st),
        };
        // From an address the provider does not list (or no sender): dropped whole.
        s.on_request(request(st.clone()), None);
        s.on_request(request(st.clone()), Some(&Pid::new("h:9", "x")));
        assert!(s.core.lock().get_state(TOPOLOGY_KEY).is_empty());
        assert_eq!(s.core.lock().rejections().unknown_sender, 2);
        // From evil's address: merged, and still blocks nobody.
        s.on_request(request(st), Some(&Pid::new("h:3", "future$1")));
        assert!(s.core.lock().get_state(TOPOLOGY_KEY).contains_key("evil"));
        s.apply_membership(now_ms());
        assert!(!ml.is_blocked("b"));
        assert_eq!(ml.members().len(), 3);
        system.shutdown();
    }

    #[test]
    fn direct_admission_takes_a_members_own_request_never_a_relayed_value() {
        let system = ActorSystem::new();
        let ml = MemberList::new(&system, "me");
        ml.update_cluster_topology(vec![
            Member::new("h", 1, "me", ["k"]),
            Member::new("h", 2, "b", ["k"]),
            Member::new("h", 3, "c", ["k"]),
        ]);
        let config = GossipConfig {
            admission: true,
            ..GossipConfig::default()
        };
        let s = shared_for_test(&system, ml.clone(), config);
        ml.require_admission();
        let ids = |ml: &MemberList| -> Vec<String> {
            ml.members().iter().map(|m| m.id.clone()).collect()
        };
        assert_eq!(ids(&ml), ["me"], "only this node before any gossip");
        let request = GossipRequest {
            from_member_id: "me".into(),
            state: Some(state(&[("b", HEARTBEAT_KEY, 7), ("c", HEARTBEAT_KEY, 9)])),
        };
        // No sender, or an address the provider does not list: nobody is admitted.
        s.on_request(request.clone(), None);
        s.on_request(request.clone(), Some(&Pid::new("h:9", "future$1")));
        assert_eq!(ids(&ml), ["me"]);
        // From b's address: b is admitted; c's heartbeat, relayed by b, admits nobody.
        s.on_request(request.clone(), Some(&Pid::new("h:2", "future$2")));
        assert_eq!(ids(&ml), ["b", "me"]);
        assert!(s.core.lock().get_state(HEARTBEAT_KEY).contains_key("c"));
        // c's own request admits c.
        s.on_request(request.clone(), Some(&Pid::new("h:3", "future$3")));
        assert_eq!(ids(&ml), ["b", "c", "me"]);

        // With a secret, the secret's rule applies: an unsigned request from b's address
        // admits nobody.
        let ml2 = MemberList::new(&system, "me");
        ml2.update_cluster_topology(ml.members().to_vec());
        let config = GossipConfig {
            admission: true,
            secret: Some(GossipSecret::new([7u8; 32]).unwrap()),
            ..GossipConfig::default()
        };
        let s2 = shared_for_test(&system, ml2.clone(), config);
        ml2.require_admission();
        s2.on_request(request, Some(&Pid::new("h:2", "future$4")));
        assert_eq!(ids(&ml2), ["me"]);
        system.shutdown();
    }

    #[test]
    fn members_not_admitted_never_crowd_out_admitted_ones_in_a_round() {
        let system = ActorSystem::new();
        let ml = MemberList::new(&system, "me");
        let mut listed = vec![
            Member::new("h", 1, "me", ["k"]),
            Member::new("h", 2, "b", ["k"]),
        ];
        listed.extend((0..5).map(|i| Member::new("h", 10 + i, format!("dead{i}"), ["k"])));
        ml.update_cluster_topology(listed);
        let config = GossipConfig {
            admission: true,
            fan_out: 1,
            ..GossipConfig::default()
        };
        let s = shared_for_test(&system, ml.clone(), config);
        ml.require_admission();
        ml.admit(["b"]);
        let t = ml.topology();
        let topology = ClusterTopology {
            topology_hash: t.hash(),
            members: t.members().cloned().collect(),
            ..Default::default()
        };
        for round in 0..20 {
            let mut core = s.core.lock();
            core.update_topology(&topology, now_ms());
            core.set_state(HEARTBEAT_KEY, pack(&MemberHeartbeat::default()), now_ms());
            let picked: Vec<String> = s
                .pick_targets(&mut core)
                .into_iter()
                .map(|(m, _)| m.id)
                .collect();
            assert_eq!(picked.len(), 2, "round {round}: {picked:?}");
            assert_eq!(picked[0], "b", "round {round}: the admitted member first");
            assert!(picked[1].starts_with("dead"), "round {round}: {picked:?}");
            s.in_flight.lock().clear();
        }
        system.shutdown();
    }

    #[test]
    fn direct_admission_takes_an_answer_and_never_admits_a_member_that_does_not_answer() {
        let TwoNodes {
            nodes: [(sa, ra), (sb, rb)],
            a,
            b,
            dead,
            fast,
        } = two_nodes();
        // B lists only itself: it never sends a request to A, so A can admit it only by
        // its answers (B answers a sender it does not list, as protoactor-go does).
        let mlb = MemberList::new(&sb, b.id.clone());
        mlb.update_cluster_topology(vec![b.clone()]);
        let gb = Gossiper::start(&sb, mlb, fast.clone(), Arc::new(HashMap::new)).unwrap();
        let mla = MemberList::new(&sa, a.id.clone());
        mla.update_cluster_topology(vec![a.clone(), b.clone(), dead.clone()]);
        let admission = GossipConfig {
            admission: true,
            ..fast
        };
        let ga = Gossiper::start(&sa, mla.clone(), admission, Arc::new(HashMap::new)).unwrap();
        eventually("A admits B", || mla.contains_member_id(&b.id));
        let hb = ga.get_state(HEARTBEAT_KEY)[&a.id].sequence_number;
        eventually("ten more rounds on A", || {
            ga.get_state(HEARTBEAT_KEY)[&a.id].sequence_number > hb + 10
        });
        assert!(
            !mla.contains_member_id(&dead.id),
            "a member that never answered was admitted"
        );
        assert_eq!(mla.members().len(), 2);
        assert_eq!(mla.listed_members().len(), 3);
        ga.stop();
        gb.stop();
        ra.shutdown();
        rb.shutdown();
        sa.shutdown();
        sb.shutdown();
    }

    /// Two nodes, each with a remote, for gossip between their members `a` and `b`; a member
    /// nobody listens for (`dead`: every request to it fails); and gossip settings with fast
    /// rounds and short request timeouts.
    struct TwoNodes {
        nodes: [(ActorSystem, Arc<protoactor_remote::Remote>); 2],
        a: Member,
        b: Member,
        dead: Member,
        fast: GossipConfig,
    }

    fn two_nodes() -> TwoNodes {
        let nodes = [node(), node()];
        let a = member_of(&nodes[0].0, &nodes[0].1);
        let b = member_of(&nodes[1].0, &nodes[1].1);
        let dead = Member::new(
            "127.0.0.1",
            protoactor_testkit::ports::free_port(),
            "dead",
            ["k"],
        );
        let fast = GossipConfig {
            interval: Duration::from_millis(50),
            request_timeout: Duration::from_millis(300),
            ..GossipConfig::default()
        };
        TwoNodes {
            nodes,
            a,
            b,
            dead,
            fast,
        }
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
        protoactor_testkit::wait::poll_until(what, Duration::from_secs(30), || {
            check().then_some(())
        });
    }

    #[test]
    fn gossip_lost_while_a_member_was_unreachable_is_resent_and_a_dead_member_blocks_nobody() {
        let TwoNodes {
            nodes: [(sa, ra), (sb, rb)],
            a,
            b,
            dead,
            fast,
        } = two_nodes();
        let all = vec![a.clone(), b.clone(), dead.clone()];
        let mla = MemberList::new(&sa, a.id.clone());
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

    #[test]
    fn garbage_in_an_any_does_not_kill_the_gossip_actor() {
        let (system, remote) = node();
        let me = member_of(&system, &remote);
        let ml = MemberList::new(&system, me.id.clone());
        // The requests come from this node's own address (listed); x, y and "" are listed.
        ml.update_cluster_topology(vec![
            me.clone(),
            Member::new("h", 2, "x", ["k"]),
            Member::new("h", 3, "y", ["k"]),
            Member::new("h", 4, "", ["k"]),
        ]);
        let g =
            Gossiper::start(&system, ml, GossipConfig::default(), Arc::new(HashMap::new)).unwrap();
        let garbage = |seq: i64, url: &str| GossipKeyValue {
            sequence_number: seq,
            value: Some(Any {
                type_url: url.into(),
                value: vec![0xff, 0xff, 0xff, 0x07, 0x00, 0x9c],
            }),
            local_timestamp_unix_milliseconds: -5,
            signature: Vec::new(),
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
        let _ = system
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
        // Four values taken; the one without a sequence number (0) is refused.
        assert_eq!(updates.lock().len(), 4);
        g.stop();
        remote.shutdown();
        system.shutdown();
    }
}
