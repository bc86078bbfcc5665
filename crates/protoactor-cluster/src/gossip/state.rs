//! The gossip state of one node: per member id, per key, a value with a sequence number;
//! Go's merge rule, and what each peer has not acknowledged yet.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use prost_types::Any;
use rand::seq::SliceRandom;

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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use prost::Message as _;
    use std::collections::BTreeMap;

    pub(crate) fn kv(seq: i64, tag: &str) -> GossipKeyValue {
        GossipKeyValue {
            sequence_number: seq,
            value: Some(Any {
                type_url: "type.googleapis.com/google.protobuf.Empty".into(),
                value: tag.as_bytes().to_vec(),
            }),
            local_timestamp_unix_milliseconds: 0,
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
