//! Heartbeat expiry and blocking: a member whose heartbeat stopped advancing is blocked in
//! the member list until it advances again (Go: forever), a member that gossiped `left` is
//! blocked for a configured time; ids blocked by others' gossip are never applied.

use std::collections::HashSet;
use std::time::Duration;

use parking_lot::Mutex;

use super::state::GossipCore;
use crate::member_list::MemberList;

#[derive(Default)]
/// What this node blocked in the member list because of gossip.
struct Blocks {
    expired: HashSet<String>,
    left: HashSet<String>,
}

/// The blocks gossip applies to the member list, and how long they last.
pub(super) struct Expiry {
    blocks: Mutex<Blocks>,
    heartbeat_expiration: Duration,
    left_block: Duration,
}

impl Expiry {
    /// Heartbeats older than `heartbeat_expiration` block their member; `left` blocks for
    /// `left_block`.
    pub(super) fn new(heartbeat_expiration: Duration, left_block: Duration) -> Self {
        Expiry {
            blocks: Mutex::new(Blocks::default()),
            heartbeat_expiration,
            left_block,
        }
    }

    /// Blocks members whose heartbeat expired (until it advances again) and members that
    /// left; lifts the block of members whose heartbeat came back.
    pub(super) fn apply(&self, core: &Mutex<GossipCore>, member_list: &MemberList, now: i64) {
        let (expired, left) = {
            let mut core = core.lock();
            (core.expired(now, self.heartbeat_expiration), core.left())
        };
        let (new_left, new_expired, recovered) = {
            let mut b = self.blocks.lock();
            let new_left: Vec<String> = left.difference(&b.left).cloned().collect();
            let new_expired: Vec<String> = expired
                .iter()
                .filter(|id| !b.expired.contains(*id) && !left.contains(*id))
                .cloned()
                .collect();
            // Back: the heartbeat advanced again, or a `left` was overtaken by newer values
            // (a forged `left` lasts until the member's next heartbeat).
            let recovered: Vec<String> = b
                .expired
                .union(&b.left)
                .filter(|id| !expired.contains(*id) && !left.contains(*id))
                .cloned()
                .collect::<HashSet<String>>()
                .into_iter()
                .collect();
            b.left = left;
            b.expired = expired;
            (new_left, new_expired, recovered)
        };
        // Not under our locks: blocking publishes a topology, which gossip handles.
        if !new_left.is_empty() {
            tracing::info!(members = ?new_left, "gossip: members left gracefully");
            member_list.block(&new_left, Some(self.left_block));
        }
        if !new_expired.is_empty() {
            tracing::info!(members = ?new_expired, "gossip: heartbeat expired");
            member_list.block(&new_expired, None);
        }
        if !recovered.is_empty() {
            tracing::info!(members = ?recovered, "gossip: heartbeat back");
            member_list.unblock(&recovered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::state::tests::state;
    const ALL: &dyn Fn(&str) -> bool = &|_| true;
    use crate::proto::Member;
    use protoactor::ActorSystem;

    #[test]
    fn expired_heartbeat_blocks_until_a_fresh_one_and_left_blocks_for_the_configured_time() {
        let system = ActorSystem::new();
        let ml = MemberList::new(&system, "me");
        ml.update_cluster_topology(vec![
            Member::new("h", 1, "me", ["k"]),
            Member::new("h", 2, "b", ["k"]),
            Member::new("h", 3, "c", ["k"]),
        ]);
        let core = Mutex::new(GossipCore::new("me", 50));
        let expiry = Expiry::new(Duration::from_secs(20), Duration::from_secs(3600));
        core.lock().receive(
            state(&[("b", "heartbeat", 1), ("c", "heartbeat", 1)]),
            0,
            ALL,
        );
        expiry.apply(&core, &ml, 10_000);
        assert_eq!(ml.members().len(), 3);
        expiry.apply(&core, &ml, 20_001);
        assert!(ml.is_blocked("b") && ml.is_blocked("c"));
        assert_eq!(ml.members().len(), 1);
        // b's heartbeat advances again: readmitted (Go: blocked forever).
        core.lock()
            .receive(state(&[("b", "heartbeat", 2)]), 20_500, ALL);
        expiry.apply(&core, &ml, 21_000);
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
        // b leaves gracefully (its last value): blocked, and stays blocked as time passes.
        core.lock().receive(state(&[("b", "left", 3)]), 21_000, ALL);
        expiry.apply(&core, &ml, 21_100);
        assert!(ml.is_blocked("b"));
        expiry.apply(&core, &ml, 60_000);
        assert!(ml.is_blocked("b"));
        // A heartbeat newer than the `left` (the `left` was forged; the member lives):
        // readmitted at once.
        core.lock()
            .receive(state(&[("b", "heartbeat", 4)]), 60_100, ALL);
        expiry.apply(&core, &ml, 60_200);
        assert!(!ml.is_blocked("b"));
        system.shutdown();
    }
}
