//! The gossip state of one node: per member id, per key, a value with a sequence number;
//! Go's merge rule, and what each peer has not acknowledged yet.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use prost::Message as _;
use prost_types::Any;
use rand::seq::SliceRandom;

use super::auth::Signing;
use super::wire::{pack, HEARTBEAT_KEY, LEFT_KEY, TOPOLOGY_KEY};
use crate::proto::{ClusterTopology, GossipKeyValue, GossipMemberState, GossipState, Member};

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

/// Merges `remote` into `local` by Go's rule (`mergeState` in
/// `cluster/gossip_state_management.go`): a member or key not known
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

/// Bounds on what gossip takes and sends, so one peer cannot grow a member without limit or
/// make its rounds exceed the transport's frame limit.
#[derive(Debug, Clone)]
pub struct GossipLimits {
    /// Largest value (encoded `Any`) taken or set, in bytes.
    pub max_value_bytes: usize,
    /// Most keys kept per member.
    pub max_keys_per_member: usize,
    /// Most member states kept (this node included).
    pub max_members: usize,
    /// Most bytes of values kept in total.
    pub max_state_bytes: usize,
    /// Largest `GossipRequest` payload sent in one round to one member; what does not fit
    /// goes next round. Below the transport limit (gRPC: 4 MiB).
    pub max_request_bytes: usize,
    /// Largest step a member's sequence number may take above the highest one known for it.
    /// Go members count one per value set (a few per second), so a real member needs a
    /// century to take this step; a forgery cannot take sequence numbers out of reach.
    pub max_sequence_step: i64,
}

impl Default for GossipLimits {
    fn default() -> Self {
        GossipLimits {
            max_value_bytes: 256 * 1024,
            max_keys_per_member: 64,
            max_members: 4096,
            max_state_bytes: 32 * 1024 * 1024,
            max_request_bytes: 1024 * 1024,
            max_sequence_step: 1 << 32,
        }
    }
}

/// Counts of gossip this node refused or corrected, by reason (forgeries are reported here
/// and in the log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GossipRejections {
    /// Values about ids the provider does not list (dropped, never stored or relayed).
    pub unknown_member: u64,
    /// Whole requests from a sender that is not a listed member.
    pub unknown_sender: u64,
    /// Values over [`GossipLimits::max_value_bytes`].
    pub oversized_value: u64,
    /// New keys over [`GossipLimits::max_keys_per_member`].
    pub too_many_keys: u64,
    /// Values refused because the state is full (members or bytes).
    pub state_full: u64,
    /// Values whose sequence number jumps more than [`GossipLimits::max_sequence_step`].
    pub implausible_sequence: u64,
    /// Values about this node with a sequence number above its own counter: the counter
    /// advanced past them and this node's true values were republished.
    pub own_value_overtaken: u64,
    /// Members whose `left` is ignored now because they heartbeat with newer values.
    pub stale_left: u64,
    /// Values without a valid signature, in a cluster with a gossip secret or member
    /// signatures (unsigned, signed with another secret or another member's key, moved to
    /// another member, key or sequence number, or with no usable certificate to check).
    pub bad_signature: u64,
    /// Certificates published for a member and refused, with member signatures (of another
    /// CA, not naming the member's host, unparsable or oversized); the member's values
    /// that came with one are dropped (counted in `bad_signature`).
    pub bad_certificate: u64,
}

/// The encoded size of a value as it travels.
fn value_len(v: &GossipKeyValue) -> usize {
    v.encoded_len()
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
    limits: GossipLimits,
    /// Bytes of all values kept (an estimate kept by merge and prune).
    bytes: usize,
    rejections: GossipRejections,
    /// With a cluster secret or member signatures, this node signs its values and takes
    /// only signed ones.
    signing: Option<Signing>,
}

impl GossipCore {
    #[cfg(test)]
    pub(crate) fn new(my_id: impl Into<String>, max_send: usize) -> Self {
        Self::with_limits(my_id, max_send, GossipLimits::default())
    }

    pub(crate) fn with_limits(
        my_id: impl Into<String>,
        max_send: usize,
        limits: GossipLimits,
    ) -> Self {
        GossipCore {
            my_id: my_id.into(),
            sequence: 0,
            state: GossipState::default(),
            committed: HashMap::new(),
            others: Vec::new(),
            max_send,
            limits,
            bytes: 0,
            rejections: GossipRejections::default(),
            signing: None,
        }
    }

    /// Signs this node's values with `signing` and takes only values signed so.
    pub(crate) fn set_signing(&mut self, signing: Option<Signing>) {
        self.signing = signing;
    }

    /// Drops the values of `member` that do not carry a valid signature (none without a
    /// secret), counting them.
    fn drop_unsigned(&mut self, member_id: &str, member: &mut GossipMemberState) {
        let secret = match &self.signing {
            None => return,
            Some(Signing::Secret(secret)) => secret,
            #[cfg(feature = "tls")]
            Some(Signing::Certs(certs)) => {
                let local = self.state.members.get(member_id);
                let dropped = certs.filter(member_id, member, local);
                self.rejections.bad_signature += dropped.values;
                self.rejections.bad_certificate += dropped.certificates;
                return;
            }
        };
        let before = member.values.len();
        member
            .values
            .retain(|key, value| secret.verify(member_id, key, value));
        let dropped = before - member.values.len();
        if dropped > 0 {
            self.rejections.bad_signature += dropped as u64;
            tracing::debug!(member = %member_id, dropped, "gossip: values without a valid signature; dropped");
        }
    }

    pub(crate) fn rejections(&self) -> GossipRejections {
        self.rejections
    }

    /// True once this node set its own `left`.
    pub(crate) fn has_left(&self) -> bool {
        self.state
            .members
            .get(&self.my_id)
            .is_some_and(|m| m.values.contains_key(LEFT_KEY))
    }

    /// (member states, bytes of others' values).
    pub(crate) fn size(&self) -> (usize, usize) {
        (self.state.members.len(), self.bytes)
    }

    pub(crate) fn count_unknown_sender(&mut self) {
        self.rejections.unknown_sender += 1;
    }

    /// Sets this node's `key`, with the next sequence number of the node's one counter.
    pub(crate) fn set_state(&mut self, key: &str, value: Any, now_ms: i64) {
        self.sequence += 1;
        let mut entry = GossipKeyValue {
            sequence_number: self.sequence,
            value: Some(value),
            local_timestamp_unix_milliseconds: now_ms,
            signature: Vec::new(),
        };
        if let Some(signing) = &self.signing {
            signing.sign(&self.my_id, key, &mut entry);
        }
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

    /// Merges `remote` by Go's rule after dropping what cannot be trusted (Go's `mergeState`
    /// in `cluster/gossip_state_management.go` takes everything): values about ids `listed` does not know, oversized values, new
    /// keys or members past the limits, and sequence numbers that jump out of reach. A value
    /// about this node above its own counter moves the counter past it and republishes this
    /// node's values, so such a forgery lasts one round.
    pub(crate) fn receive(
        &mut self,
        mut remote: GossipState,
        now_ms: i64,
        listed: &dyn Fn(&str) -> bool,
    ) -> Vec<GossipUpdate> {
        if let Some(mut mine) = remote.members.remove(&self.my_id) {
            let me = self.my_id.clone();
            self.drop_unsigned(&me, &mut mine);
            self.overtake(mine, now_ms);
        }
        let limits = self.limits.clone();
        let mut admitted = GossipState::default();
        let mut members = self.state.members.len();
        let mut unknown = 0usize;
        for (id, mut member) in remote.members {
            if !listed(&id) {
                self.rejections.unknown_member += member.values.len().max(1) as u64;
                unknown += 1;
                continue;
            }
            self.drop_unsigned(&id, &mut member);
            let local = self.state.members.get(&id);
            if local.is_none() && members >= limits.max_members {
                self.rejections.state_full += member.values.len() as u64;
                continue;
            }
            let known_high = local
                .and_then(|m| m.values.values().map(|v| v.sequence_number).max())
                .unwrap_or(0);
            let mut keys = local.map_or(0, |m| m.values.len());
            let mut out = GossipMemberState::default();
            for (key, value) in member.values {
                let old = local.and_then(|m| m.values.get(&key));
                if old.is_some_and(|o| o.sequence_number >= value.sequence_number) {
                    continue;
                }
                let len = value_len(&value);
                if len > limits.max_value_bytes {
                    self.rejections.oversized_value += 1;
                    tracing::debug!(member = %id, %key, bytes = len, "gossip: value over the size limit; dropped");
                    continue;
                }
                if value.sequence_number > known_high.saturating_add(limits.max_sequence_step)
                    || value.sequence_number <= 0
                {
                    self.rejections.implausible_sequence += 1;
                    tracing::debug!(member = %id, %key, seq = value.sequence_number, known_high, "gossip: implausible sequence number; dropped");
                    continue;
                }
                if old.is_none() {
                    if keys >= limits.max_keys_per_member {
                        self.rejections.too_many_keys += 1;
                        continue;
                    }
                    keys += 1;
                }
                let freed = old.map_or(0, value_len);
                if (self.bytes + len).saturating_sub(freed) > limits.max_state_bytes {
                    self.rejections.state_full += 1;
                    continue;
                }
                self.bytes = (self.bytes + len).saturating_sub(freed);
                out.values.insert(key, value);
            }
            if !out.values.is_empty() {
                members += usize::from(local.is_none());
                admitted.members.insert(id, out);
            }
        }
        if unknown > 0 {
            // One line per request, however many ids it forged. Debug: with etcd, Go members
            // key their gossip by system id, which the provider does not list.
            tracing::debug!(
                ids = unknown,
                "gossip: values about ids the provider does not list; dropped"
            );
        }
        merge_state(&mut self.state, admitted, &self.my_id, now_ms)
    }

    /// Values about this node that others hold: any above this node's counter is a forgery
    /// (only this node writes them). The counter moves past it and every value of this node
    /// gets a new, higher number, so the true values win everywhere at the next round.
    fn overtake(&mut self, mine: GossipMemberState, now_ms: i64) {
        let Some(high) = mine.values.values().map(|v| v.sequence_number).max() else {
            return;
        };
        if high <= self.sequence {
            return;
        }
        self.rejections.own_value_overtaken += 1;
        if high > self.sequence.saturating_add(self.limits.max_sequence_step) {
            // Out of reach: others refused it too (they check the same step).
            self.rejections.implausible_sequence += 1;
            tracing::warn!(
                seq = high,
                own = self.sequence,
                "gossip: an implausible value about this node; ignored"
            );
            return;
        }
        tracing::warn!(
            seq = high,
            own = self.sequence,
            "gossip: a value about this node above its own counter (forged); republishing"
        );
        self.sequence = high;
        let own = self.state.members.entry(self.my_id.clone()).or_default();
        let mut keys: Vec<String> = own.values.keys().cloned().collect();
        keys.sort();
        for key in keys {
            self.sequence += 1;
            if let Some(v) = own.values.get_mut(&key) {
                v.sequence_number = self.sequence;
                v.local_timestamp_unix_milliseconds = now_ms;
                if let Some(signing) = &self.signing {
                    signing.sign(&self.my_id, &key, v);
                }
            }
        }
    }

    /// Forgets the state of members `listed` no longer knows (this node's own is kept), and
    /// the watermarks about them.
    pub(crate) fn prune(&mut self, listed: &dyn Fn(&str) -> bool) {
        let me = self.my_id.clone();
        let mut freed = 0;
        self.state.members.retain(|id, m| {
            let keep = *id == me || listed(id);
            if !keep {
                freed += m.values.values().map(value_len).sum::<usize>();
            }
            keep
        });
        self.bytes = self.bytes.saturating_sub(freed);
        #[cfg(feature = "tls")]
        if let Some(Signing::Certs(certs)) = &self.signing {
            certs.prune(listed);
        }
        for c in self.committed.values_mut() {
            c.retain(|id, _| *id == me || listed(id));
        }
    }

    /// Records that `target` holds its own values up to `high` (it sent them itself), so
    /// they are not echoed back to it.
    pub(crate) fn commit_own(&mut self, target: &str, state: Option<&GossipState>) {
        let high = state
            .and_then(|s| s.members.get(target))
            .and_then(|m| m.values.values().map(|v| v.sequence_number).max());
        if let Some(high) = high {
            self.commit(target, &[(target.to_string(), high)]);
        }
    }

    /// The values `target` has not acknowledged: this node's state first, then up to
    /// `max_send` other members' states, the target's own included (so a forgery about it
    /// reaches it and is overtaken; what it sent itself is not echoed). Within
    /// [`GossipLimits::max_request_bytes`]: each member's values go in sequence order and
    /// stop at the first that does not fit, so its watermark skips nothing.
    pub(crate) fn delta_for(&self, target: &str) -> Delta {
        let committed = self.committed.get(target);
        let mut delta = Delta::default();
        let mut ids: Vec<&String> = self
            .state
            .members
            .keys()
            .filter(|id| **id != self.my_id)
            .collect();
        ids.shuffle(&mut rand::rng());
        ids.truncate(self.max_send);
        if self.state.members.contains_key(&self.my_id) && target != self.my_id {
            ids.insert(0, &self.my_id);
        }
        let mut budget = self.limits.max_request_bytes;
        'members: for id in ids {
            let member = &self.state.members[id];
            let mark = committed.and_then(|c| c.get(id)).copied().unwrap_or(0);
            let mut fresh: Vec<(&String, &GossipKeyValue)> = member
                .values
                .iter()
                .filter(|(_, v)| v.sequence_number > mark)
                .collect();
            fresh.sort_by_key(|(_, v)| v.sequence_number);
            let mut out = GossipMemberState::default();
            let mut high = mark;
            let mut full = false;
            for (key, value) in fresh {
                // Key, value and framing.
                let len = value_len(value) + key.len() + id.len() + 16;
                if len > budget {
                    full = true;
                    break;
                }
                budget -= len;
                high = high.max(value.sequence_number);
                out.values.insert(key.clone(), value.clone());
            }
            if !out.values.is_empty() {
                delta.state.members.insert(id.clone(), out);
                delta.watermarks.push((id.clone(), high));
            }
            if full {
                break 'members;
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

    /// Members (not this one) that gossiped `left` after their last heartbeat. A `left`
    /// older than the member's heartbeat is ignored: a member that still heartbeats with
    /// newer values has not left (a real leave is the member's last value).
    pub(crate) fn left(&mut self) -> HashSet<String> {
        let mut stale = 0;
        let left: HashSet<String> = self
            .state
            .members
            .iter()
            .filter(|(id, _)| **id != self.my_id)
            .filter_map(|(id, m)| {
                let left = m.values.get(LEFT_KEY)?;
                let beat = m.values.get(HEARTBEAT_KEY);
                if beat.is_some_and(|b| b.sequence_number > left.sequence_number) {
                    stale += 1;
                    return None;
                }
                Some(id.clone())
            })
            .collect();
        self.rejections.stale_left = stale;
        left
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    pub(crate) fn kv(seq: i64, tag: &str) -> GossipKeyValue {
        GossipKeyValue {
            sequence_number: seq,
            value: Some(Any {
                type_url: "type.googleapis.com/google.protobuf.Empty".into(),
                value: tag.as_bytes().to_vec(),
            }),
            local_timestamp_unix_milliseconds: 0,
            signature: Vec::new(),
        }
    }

    pub(crate) fn state(entries: &[(&str, &str, i64)]) -> GossipState {
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

    const ALL: &dyn Fn(&str) -> bool = &|_| true;

    #[test]
    fn a_value_about_this_node_above_its_counter_is_overtaken_and_republished() {
        let mut core = GossipCore::new("me", 50);
        core.set_state(HEARTBEAT_KEY, Any::default(), 1);
        core.set_state(TOPOLOGY_KEY, Any::default(), 1);
        // Below the counter: nothing happens.
        assert!(core
            .receive(state(&[("me", "heartbeat", 2)]), 2, ALL)
            .is_empty());
        assert_eq!(core.rejections().own_value_overtaken, 0);
        // A forgery about this node: never taken, the counter moves past it and every value
        // of this node gets a higher number, so the true values win everywhere.
        let updates = core.receive(
            state(&[("me", "left", 99), ("me", "heartbeat", 50)]),
            3,
            ALL,
        );
        assert!(updates.is_empty());
        assert!(core.left().is_empty());
        let mine = &core.state.members["me"].values;
        assert!(!mine.contains_key(LEFT_KEY));
        let mut seqs: Vec<i64> = mine.values().map(|v| v.sequence_number).collect();
        seqs.sort();
        assert_eq!(seqs, [100, 101]);
        assert_eq!(core.rejections().own_value_overtaken, 1);
        core.set_state(HEARTBEAT_KEY, Any::default(), 4);
        assert_eq!(core.get_state(HEARTBEAT_KEY)["me"].sequence_number, 102);
        // Out of reach (over the step): ignored, the counter stays usable.
        core.receive(state(&[("me", "heartbeat", i64::MAX)]), 5, ALL);
        assert_eq!(core.rejections().implausible_sequence, 1);
        core.set_state(HEARTBEAT_KEY, Any::default(), 6);
        assert_eq!(core.get_state(HEARTBEAT_KEY)["me"].sequence_number, 103);
    }

    #[test]
    fn values_about_unlisted_ids_are_dropped_and_forgotten_when_the_provider_drops_them() {
        let mut core = GossipCore::new("me", 50);
        let listed = |id: &str| id == "b" || id == "c";
        let updates = core.receive(
            state(&[
                ("b", "heartbeat", 1),
                ("ghost", "heartbeat", 1),
                ("ghost", "left", 2),
            ]),
            1,
            &listed,
        );
        assert_eq!(updates.len(), 1);
        assert!(!core.state.members.contains_key("ghost"));
        assert_eq!(core.rejections().unknown_member, 2);
        // Never relayed: the delta to c carries b's heartbeat only.
        let d = core.delta_for("c");
        assert_eq!(d.state.members.keys().collect::<Vec<_>>(), ["b"]);
        // The provider drops b: its state and watermarks go.
        core.commit("c", &d.watermarks);
        core.prune(&|id: &str| id == "c");
        assert!(core.state.members.is_empty());
        assert!(core.committed["c"].is_empty());
    }

    #[test]
    fn sizes_and_sequence_steps_are_bounded() {
        let limits = GossipLimits {
            max_value_bytes: 100,
            max_keys_per_member: 2,
            max_members: 3,
            max_state_bytes: 250,
            max_sequence_step: 1000,
            ..GossipLimits::default()
        };
        let mut core = GossipCore::with_limits("me", 50, limits);
        core.set_state(HEARTBEAT_KEY, Any::default(), 0);
        let big = |seq: i64, n: usize| GossipKeyValue {
            sequence_number: seq,
            value: Some(Any {
                type_url: "t".into(),
                value: vec![7; n],
            }),
            local_timestamp_unix_milliseconds: 0,
            signature: Vec::new(),
        };
        let mut s = GossipState::default();
        let b = &mut s.members.entry("b".into()).or_default().values;
        b.insert("huge".into(), big(1, 1000));
        b.insert("k1".into(), big(2, 10));
        b.insert("k2".into(), big(3, 10));
        b.insert("k3".into(), big(4, 10));
        core.receive(s, 1, ALL);
        let r = core.rejections();
        assert_eq!(r.oversized_value, 1);
        // Two of k1..k3 fit (HashMap order decides which).
        assert_eq!(r.too_many_keys, 1);
        assert_eq!(core.state.members["b"].values.len(), 2);
        // A jump beyond the step from the highest known number (at most 4) is refused;
        // within it, taken.
        let key = core.state.members["b"]
            .values
            .keys()
            .next()
            .unwrap()
            .clone();
        core.receive(state(&[("b", &key, 1005)]), 2, ALL);
        assert_eq!(core.rejections().implausible_sequence, 1);
        core.receive(state(&[("b", &key, 1002)]), 2, ALL);
        assert_eq!(core.state.members["b"].values[&key].sequence_number, 1002);
        // Members: me, b and one more.
        core.receive(state(&[("c", "k", 1), ("d", "k", 1)]), 3, ALL);
        assert_eq!(core.state.members.len(), 3);
        assert_eq!(core.rejections().state_full, 1);
        // Bytes: values of 90 bytes fill the 400 bytes.
        let mut s = GossipState::default();
        let c = &mut s.members.entry("c".into()).or_default().values;
        c.insert("k".into(), big(2, 90));
        let before = core.rejections().state_full;
        core.receive(s, 4, ALL);
        let mut s = GossipState::default();
        let b = &mut s.members.entry("b".into()).or_default().values;
        for k in ["k1", "k2", "k3"] {
            b.insert(k.into(), big(1900, 90));
        }
        core.receive(s, 5, ALL);
        assert!(core.bytes <= 250, "{}", core.bytes);
        assert!(core.rejections().state_full > before);
    }

    #[test]
    fn a_round_stays_under_the_request_limit_and_the_rest_goes_next_round() {
        let limits = GossipLimits {
            max_request_bytes: 1000,
            ..GossipLimits::default()
        };
        let mut core = GossipCore::with_limits("me", 50, limits);
        let big = |seq: i64| GossipKeyValue {
            sequence_number: seq,
            value: Some(Any {
                type_url: "t".into(),
                value: vec![7; 400],
            }),
            local_timestamp_unix_milliseconds: 0,
            signature: Vec::new(),
        };
        let mut s = GossipState::default();
        let b = &mut s.members.entry("b".into()).or_default().values;
        for (i, k) in ["k1", "k2", "k3", "k4", "k5"].iter().enumerate() {
            b.insert(k.to_string(), big(i as i64 + 1));
        }
        core.receive(s, 1, ALL);
        let mut got = Vec::new();
        for _ in 0..5 {
            let d = core.delta_for("t");
            if d.is_empty() {
                break;
            }
            assert!(d.state.encoded_len() <= 1000, "{}", d.state.encoded_len());
            got.extend(
                d.state.members["b"]
                    .values
                    .values()
                    .map(|v| v.sequence_number),
            );
            core.commit("t", &d.watermarks);
        }
        got.sort();
        assert_eq!(got, [1, 2, 3, 4, 5], "every value went, in sequence order");
    }

    #[test]
    fn has_left_once_this_node_set_left() {
        let mut core = GossipCore::new("me", 50);
        core.set_state(HEARTBEAT_KEY, Any::default(), 1);
        assert!(!core.has_left());
        core.set_state(LEFT_KEY, Any::default(), 2);
        assert!(core.has_left());
    }

    #[test]
    fn a_left_older_than_the_members_heartbeat_is_ignored() {
        let mut core = GossipCore::new("me", 50);
        core.receive(state(&[("b", "heartbeat", 10), ("b", "left", 1)]), 1, ALL);
        assert!(core.left().is_empty());
        assert_eq!(core.rejections().stale_left, 1);
        // A real leave is the member's last value.
        core.receive(state(&[("b", "left", 11)]), 2, ALL);
        assert_eq!(core.left(), HashSet::from(["b".to_string()]));
    }

    #[test]
    fn what_a_member_sent_itself_is_not_echoed_but_a_forgery_about_it_is() {
        let mut core = GossipCore::new("me", 50);
        let from_b = state(&[("b", "heartbeat", 5)]);
        core.commit_own("b", Some(&from_b));
        core.receive(from_b, 1, ALL);
        assert!(core.delta_for("b").is_empty());
        // Someone else's (higher) value about b goes to b, which overtakes it.
        core.receive(state(&[("b", "heartbeat", 900)]), 2, ALL);
        let d = core.delta_for("b");
        assert_eq!(
            d.state.members["b"].values["heartbeat"].sequence_number,
            900
        );
    }

    #[test]
    fn watermarks_advance_only_on_commit_so_lost_gossip_is_resent() {
        let mut core = GossipCore::new("me", 50);
        core.set_state(TOPOLOGY_KEY, Any::default(), 1);
        core.set_state(HEARTBEAT_KEY, Any::default(), 1);
        core.receive(
            state(&[("c", "heartbeat", 4), ("t", "heartbeat", 9)]),
            1,
            ALL,
        );
        let d1 = core.delta_for("t");
        assert_eq!(
            seqs(&d1.state).into_keys().collect::<Vec<_>>(),
            [
                ("c".into(), "heartbeat".into()),
                ("me".into(), "heartbeat".into()),
                ("me".into(), "topology".into()),
                ("t".into(), "heartbeat".into())
            ],
            "everything, the target's own state too (it did not send it itself)"
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
        // "c" acknowledged nothing: our two keys, t's heartbeat and its own.
        assert_eq!(seqs(&core.delta_for("c").state).len(), 4);
        // A late commit of an older delta never lowers a watermark.
        core.commit("t", &[("me".into(), 1)]);
        assert_eq!(seqs(&core.delta_for("t").state).len(), 1);
    }

    #[test]
    fn expiry_and_left_are_read_from_the_state() {
        let mut core = GossipCore::new("me", 50);
        core.set_state(HEARTBEAT_KEY, Any::default(), 0);
        core.receive(state(&[("old", "heartbeat", 1)]), 1_000, ALL);
        core.receive(
            state(&[("fresh", "heartbeat", 1), ("gone", "left", 3)]),
            20_000,
            ALL,
        );
        let expired = core.expired(21_500, Duration::from_secs(20));
        assert_eq!(expired, HashSet::from(["old".to_string()]));
        assert_eq!(core.left(), HashSet::from(["gone".to_string()]));
        // A newer heartbeat refreshes the timestamp: no longer expired.
        core.receive(state(&[("old", "heartbeat", 2)]), 21_000, ALL);
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
