//! The member list: the current topology (provider members minus blocked ids), its hash,
//! and the `ClusterTopology` events published on the actor system's event stream when it
//! changes, exactly as protoactor-go's `MemberList.UpdateClusterTopology` computes them.
//!
//! Unlike Go, a member that leaves is **not** blocked forever (protoactor-go #1083): ids are
//! blocked only on request ([`MemberList::block`], used by gossip for expired heartbeats and
//! graceful leave), optionally for a limited time, so a provider glitch cannot ban a live
//! member for good.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use parking_lot::{Mutex, ReentrantMutex};
use protoactor::{ActorSystem, Pid};
use tokio::sync::watch;

use crate::hash::{rendezvous_owner, topology_hash};
use crate::member::AddressedMember;
use crate::proto::{ClusterTopology, Member};

/// One consistent view of the cluster: the active members in ascending id order and their
/// topology hash.
#[derive(Debug, Default)]
pub struct Topology {
    hash: u64,
    members: Vec<AddressedMember>,
}

impl Topology {
    /// The topology hash (murmur3 of the sorted ids; 0 when empty).
    pub fn hash(&self) -> u64 {
        self.hash
    }
    /// The active members, ascending by id.
    pub fn members(&self) -> impl ExactSizeIterator<Item = &Member> {
        self.members.iter().map(|m| &m.member)
    }
    /// The number of active members.
    pub fn len(&self) -> usize {
        self.members.len()
    }
    /// True when there is no active member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
    /// The member with id `id`.
    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members
            .binary_search_by(|m| m.member.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.members[i].member)
    }
    /// True if a member at `address` (`host:port`) is active.
    pub fn contains_address(&self, address: &str) -> bool {
        self.members.iter().any(|m| &*m.address == address)
    }
    /// The address of the member that owns `identity` of `kind` (disthash rendezvous), or
    /// `None` if no active member hosts the kind.
    pub fn owner(&self, kind: &str, identity: &str) -> Option<&str> {
        rendezvous_owner(&self.members, kind, identity).map(|m| &*m.address)
    }
    /// The PID `pid` of a member of this topology, sharing the member's address (a PID
    /// cache of 100,000 grains then holds a handful of addresses, not 100,000 copies).
    pub fn pid_at_member(&self, pid: &protoactor_remote::actor_proto::Pid) -> Pid {
        match self.members.iter().find(|m| *m.address == *pid.address) {
            Some(m) if pid.request_id == 0 => Pid::new(m.address.clone(), pid.id.as_str()),
            _ => pid.to_pid(),
        }
    }
}

struct State {
    /// The complete list from the provider, self included.
    provider_members: Vec<Member>,
    /// Blocked ids, with when the block ends (`None`: never).
    blocked: HashMap<String, Option<Instant>>,
    /// With admission (signed gossip, or gossip admission): the members that proved
    /// themselves (a value they signed arrived; without a secret, their own gossip reached
    /// this node directly); the others are kept out of the topology. `None`: every listed
    /// member is in.
    admitted: Option<HashSet<String>>,
}

struct Inner {
    system: ActorSystem,
    self_id: String,
    state: Mutex<State>,
    /// Serializes computing and publishing, so events arrive in the order of the topologies.
    /// Reentrant: an event handler that blocks an id publishes the next event itself.
    publish: ReentrantMutex<()>,
    current: ArcSwap<Topology>,
    /// The hashes of the topologies before the current one, newest last (bounded), so a
    /// placement actor can tell a caller whose view is behind from one whose view is ahead.
    past: Mutex<std::collections::VecDeque<u64>>,
    watch: watch::Sender<Arc<Topology>>,
    /// Why the provider is not connected (`None`: connected, or it does not say): set by a
    /// provider started before it could reach its backend; calls fail with it meanwhile.
    not_connected: ArcSwap<Option<String>>,
}

/// How many past topology hashes a member list remembers.
const PAST_TOPOLOGIES: usize = 64;

/// The member list of one cluster node. Cheap to clone (shared).
#[derive(Clone)]
pub struct MemberList(Arc<Inner>);

impl MemberList {
    /// An empty member list of the node whose member id is `self_id` (empty for a client),
    /// publishing its events on `system`'s event stream.
    pub fn new(system: &ActorSystem, self_id: impl Into<String>) -> Self {
        let empty = Arc::new(Topology::default());
        let (tx, _) = watch::channel(empty.clone());
        MemberList(Arc::new(Inner {
            system: system.clone(),
            self_id: self_id.into(),
            state: Mutex::new(State {
                provider_members: Vec::new(),
                blocked: HashMap::new(),
                admitted: None,
            }),
            publish: ReentrantMutex::new(()),
            current: ArcSwap::new(empty),
            past: Mutex::new(std::collections::VecDeque::new()),
            watch: tx,
            not_connected: ArcSwap::from_pointee(None),
        }))
    }

    /// Why the provider is not connected yet, when it started without a connection (it
    /// said so through its context's `set_not_connected`); `None` once it connected.
    pub fn provider_not_connected(&self) -> Option<String> {
        Option::clone(&self.0.not_connected.load())
    }

    pub(crate) fn set_provider_not_connected(&self, reason: Option<String>) {
        self.0.not_connected.store(Arc::new(reason));
    }

    /// This node's member id.
    pub fn self_id(&self) -> &str {
        &self.0.self_id
    }

    /// The current topology.
    pub fn topology(&self) -> Arc<Topology> {
        self.0.current.load_full()
    }

    /// The active members, ascending by id.
    pub fn members(&self) -> Vec<Member> {
        self.topology().members().cloned().collect()
    }

    /// The current topology hash.
    pub fn topology_hash(&self) -> u64 {
        self.0.current.load().hash
    }

    /// True if `hash` is the hash of one of the last topologies before the current one (and
    /// not the current one's): a caller that sends it has a view that is behind this node's.
    /// Never true for 0 (what Go callers send, and the empty topology's hash).
    pub fn is_past_topology(&self, hash: u64) -> bool {
        hash != 0 && hash != self.topology_hash() && self.0.past.lock().contains(&hash)
    }

    /// True if the member id `id` is active.
    pub fn contains_member_id(&self, id: &str) -> bool {
        self.0.current.load().member(id).is_some()
    }

    /// The address of the owner of `identity` of `kind` in the current topology.
    pub fn owner(&self, kind: &str, identity: &str) -> Option<String> {
        self.0
            .current
            .load()
            .owner(kind, identity)
            .map(str::to_owned)
    }

    /// A receiver that sees every new topology (for waiting on a topology change).
    pub fn watch(&self) -> watch::Receiver<Arc<Topology>> {
        self.0.watch.subscribe()
    }

    /// Waits until `predicate` holds for the current topology, or `timeout` passes
    /// (`false` then). A topology is seen here only after its `ClusterTopology` event was
    /// handled (PID caches evicted, placement re-checked). Any executor may poll it.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut predicate: impl FnMut(&Topology) -> bool,
    ) -> bool {
        let mut rx = self.watch();
        let fut = async move {
            loop {
                let current = rx.borrow_and_update().clone();
                if predicate(&current) {
                    return;
                }
                if rx.changed().await.is_err() {
                    // The member list is gone: wait for the timeout instead of spinning.
                    std::future::pending::<()>().await;
                }
            }
        };
        // The timer belongs to the system's runtime, so callers need no tokio context.
        let timed = {
            let _rt = self.0.system.runtime().enter();
            tokio::time::timeout(timeout, fut)
        };
        timed.await.is_ok()
    }

    /// Runs `fut` (a request to the member at `address`, bounded by its own timeout) until
    /// it completes, or `address` leaves the topology (`None`: the caller re-resolves at
    /// once instead of waiting for a member that is gone). No timer of its own: one per
    /// grain call was a second registration in the runtime's timer wheel beside the
    /// request's deadline.
    pub async fn until_gone<F: std::future::Future>(
        &self,
        address: &str,
        fut: F,
    ) -> Option<F::Output> {
        let mut rx = self.watch();
        let gone = async move {
            loop {
                if !rx.borrow_and_update().contains_address(address) {
                    return;
                }
                if rx.changed().await.is_err() {
                    // The member list is gone: only `fut` can end the wait.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::pin!(fut);
        tokio::select! {
            biased;
            out = &mut fut => Some(out),
            () = gone => None,
        }
    }

    /// Providers call this with the complete current member list, self included. When the
    /// set of active ids changed, the new topology is published as a [`ClusterTopology`]
    /// (`members`, `joined`, `left` ascending by id; `blocked` empty, as Go sends it).
    pub fn update_cluster_topology(&self, members: Vec<Member>) {
        let _order = self.0.publish.lock();
        self.0.state.lock().provider_members = members;
        self.recompute();
    }

    /// Blocks `ids` for `duration` (`None`: until unblocked): they leave the topology at once
    /// and cannot rejoin until the block ends. Go blocks an id whose heartbeat expired or
    /// that gossiped `left`.
    pub fn block(&self, ids: &[String], duration: Option<Duration>) {
        let _order = self.0.publish.lock();
        {
            let mut st = self.0.state.lock();
            let until = duration.map(|d| Instant::now() + d);
            for id in ids {
                if *id == self.0.self_id {
                    continue;
                }
                st.blocked.insert(id.clone(), until);
            }
        }
        self.recompute();
    }

    /// Lifts the block of `ids`.
    pub fn unblock(&self, ids: &[String]) {
        let _order = self.0.publish.lock();
        {
            let mut st = self.0.state.lock();
            for id in ids {
                st.blocked.remove(id);
            }
        }
        self.recompute();
    }

    /// From now on a listed member joins the topology only once [`admit`](Self::admit)ted
    /// (signed gossip: once a value it signed with the cluster secret arrived; gossip
    /// admission without a secret: once its own gossip reached this node directly). This
    /// node is always in.
    pub fn require_admission(&self) {
        let _order = self.0.publish.lock();
        self.0
            .state
            .lock()
            .admitted
            .get_or_insert_with(HashSet::new);
        self.recompute();
    }

    /// Admits `ids` to the topology (see [`require_admission`](Self::require_admission));
    /// publishes a new topology if one was listed and not admitted before.
    pub fn admit<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let newly = {
            let mut st = self.0.state.lock();
            let Some(admitted) = st.admitted.as_mut() else {
                return;
            };
            let mut newly = false;
            for id in ids {
                if !admitted.contains(id) {
                    admitted.insert(id.to_string());
                    newly = true;
                }
            }
            newly
        };
        if newly {
            let _order = self.0.publish.lock();
            self.recompute();
        }
    }

    /// The members the provider lists that are not blocked, admitted or not (self included):
    /// whom a node requiring admission gossips with, so that they can prove themselves.
    pub fn listed_members(&self) -> Vec<Member> {
        let now = Instant::now();
        let st = self.0.state.lock();
        st.provider_members
            .iter()
            .filter(|m| {
                st.blocked
                    .get(&m.id)
                    .is_none_or(|until| until.is_some_and(|u| u <= now))
            })
            .cloned()
            .collect()
    }

    /// True if the provider lists `id` now, blocked or not: the provider is the authority on
    /// who exists, so gossip takes values only about listed ids.
    pub fn is_listed(&self, id: &str) -> bool {
        self.0
            .state
            .lock()
            .provider_members
            .iter()
            .any(|m| m.id == id)
    }

    /// The member the provider lists with id `id`, blocked or not.
    pub fn listed_member(&self, id: &str) -> Option<Member> {
        self.0
            .state
            .lock()
            .provider_members
            .iter()
            .find(|m| m.id == id)
            .cloned()
    }

    /// The id of the member the provider lists at `address` (`host:port`), blocked or not.
    pub fn listed_at(&self, address: &str) -> Option<String> {
        self.0
            .state
            .lock()
            .provider_members
            .iter()
            .find(|m| m.address() == address)
            .map(|m| m.id.clone())
    }

    /// True if `id` is blocked now.
    pub fn is_blocked(&self, id: &str) -> bool {
        let now = Instant::now();
        self.0
            .state
            .lock()
            .blocked
            .get(id)
            .is_some_and(|until| until.is_none_or(|u| u > now))
    }

    /// The ids blocked now.
    pub fn blocked(&self) -> Vec<String> {
        let now = Instant::now();
        let mut v: Vec<String> = self
            .0
            .state
            .lock()
            .blocked
            .iter()
            .filter(|(_, until)| until.is_none_or(|u| u > now))
            .map(|(id, _)| id.clone())
            .collect();
        v.sort();
        v
    }

    /// Recomputes the active set; publishes when it changed. Called with `publish` held.
    fn recompute(&self) {
        let (event, topology) = {
            let mut st = self.0.state.lock();
            let now = Instant::now();
            st.blocked.retain(|_, until| until.is_none_or(|u| u > now));
            let mut by_id: HashMap<&str, &Member> = HashMap::new();
            let me = self.0.self_id.as_str();
            for m in &st.provider_members {
                let admitted = m.id == me || st.admitted.as_ref().is_none_or(|a| a.contains(&m.id));
                if admitted && !st.blocked.contains_key(&m.id) {
                    // A provider listing one id twice: the later entry wins.
                    by_id.insert(m.id.as_str(), m);
                }
            }
            let mut active: Vec<Member> = by_id.into_values().cloned().collect();
            active.sort_by(|a, b| a.id.cmp(&b.id));
            let ids: Vec<&str> = active.iter().map(|m| m.id.as_str()).collect();
            let hash = topology_hash(&ids);
            let current = self.0.current.load_full();
            // As in Go, only the ids are hashed: a changed address or kind list alone is
            // not a new topology.
            if hash == current.hash && ids.len() == current.members.len() {
                return;
            }
            let new_ids: HashSet<&str> = ids.iter().copied().collect();
            let old_ids: HashSet<&str> = current
                .members
                .iter()
                .map(|m| m.member.id.as_str())
                .collect();
            let joined: Vec<Member> = active
                .iter()
                .filter(|m| !old_ids.contains(m.id.as_str()))
                .cloned()
                .collect();
            let left: Vec<Member> = current
                .members
                .iter()
                .filter(|m| !new_ids.contains(m.member.id.as_str()))
                .map(|m| m.member.clone())
                .collect();
            let topology = Arc::new(Topology {
                hash,
                members: active.iter().cloned().map(AddressedMember::new).collect(),
            });
            {
                let mut past = self.0.past.lock();
                if past.len() == PAST_TOPOLOGIES {
                    past.pop_front();
                }
                past.push_back(current.hash);
            }
            self.0.current.store(topology.clone());
            let event = ClusterTopology {
                topology_hash: hash,
                members: active,
                joined,
                left,
                blocked: Vec::new(),
            };
            (event, topology)
        };
        tracing::debug!(
            hash = event.topology_hash,
            members = event.members.len(),
            joined = event.joined.len(),
            left = event.left.len(),
            "cluster topology changed"
        );
        self.0.system.event_stream().publish(&event);
        // Waiters see the topology once its handlers ran.
        self.0.watch.send_replace(topology);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn m(id: &str, port: u16) -> Member {
        Member::new("127.0.0.1", port, id, ["k"])
    }

    fn events(system: &ActorSystem) -> Arc<Mutex<Vec<ClusterTopology>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let _ = system
            .event_stream()
            .subscribe_to::<ClusterTopology, _>(move |t| s.lock().push(t.clone()));
        seen
    }

    fn ids(ms: &[Member]) -> Vec<&str> {
        ms.iter().map(|m| m.id.as_str()).collect()
    }

    #[test]
    fn publishes_joined_and_left_sorted_by_id() {
        let system = ActorSystem::new();
        let seen = events(&system);
        let ml = MemberList::new(&system, "b");
        ml.update_cluster_topology(vec![m("c", 3), m("a", 1), m("b", 2)]);
        ml.update_cluster_topology(vec![m("b", 2), m("a", 1), m("d", 4)]);
        let seen = seen.lock();
        assert_eq!(seen.len(), 2);
        assert_eq!(ids(&seen[0].members), ["a", "b", "c"]);
        assert_eq!(ids(&seen[0].joined), ["a", "b", "c"]);
        assert!(seen[0].left.is_empty());
        assert_eq!(seen[0].topology_hash, topology_hash(&["a", "b", "c"]));
        assert_eq!(ids(&seen[1].members), ["a", "b", "d"]);
        assert_eq!(ids(&seen[1].joined), ["d"]);
        assert_eq!(ids(&seen[1].left), ["c"]);
        assert!(seen[1].blocked.is_empty());
        assert_eq!(ml.topology_hash(), topology_hash(&["a", "b", "d"]));
        assert!(ml.is_past_topology(topology_hash(&["a", "b", "c"])));
        assert!(
            !ml.is_past_topology(ml.topology_hash()),
            "the current one is not past"
        );
        assert!(!ml.is_past_topology(12345), "never seen");
        system.shutdown();
    }

    #[test]
    fn same_ids_publish_nothing() {
        let system = ActorSystem::new();
        let seen = events(&system);
        let ml = MemberList::new(&system, "a");
        ml.update_cluster_topology(vec![m("a", 1), m("b", 2)]);
        // Reordered and with another port: the ids are the same, so no new topology.
        ml.update_cluster_topology(vec![m("b", 9), m("a", 1)]);
        ml.update_cluster_topology(vec![]);
        ml.update_cluster_topology(vec![]);
        let seen = seen.lock();
        assert_eq!(seen.len(), 2);
        assert_eq!(ids(&seen[1].left), ["a", "b"]);
        assert_eq!(seen[1].topology_hash, 0);
        system.shutdown();
    }

    #[test]
    fn with_admission_only_admitted_members_join() {
        let system = ActorSystem::new();
        let ml = MemberList::new(&system, "a");
        ml.require_admission();
        ml.update_cluster_topology(vec![m("a", 1), m("b", 2), m("c", 3)]);
        assert_eq!(ids(&ml.members()), ["a"], "self is always in");
        assert_eq!(ml.listed_members().len(), 3, "gossiped with all the same");
        ml.admit(["b", "x"]);
        assert_eq!(ids(&ml.members()), ["a", "b"], "x is not listed");
        ml.block(&["b".into()], None);
        assert_eq!(ids(&ml.members()), ["a"]);
        assert_eq!(
            ids(&ml.listed_members()),
            ["a", "c"],
            "blocked ids are not gossiped with"
        );
        system.shutdown();
    }

    #[test]
    fn blocked_ids_leave_until_unblocked_or_expired() {
        let system = ActorSystem::new();
        let ml = MemberList::new(&system, "a");
        ml.update_cluster_topology(vec![m("a", 1), m("b", 2), m("c", 3)]);
        ml.block(&["b".into(), "a".into()], None);
        assert_eq!(ids(&ml.members()), ["a", "c"], "self is never blocked");
        assert!(ml.is_blocked("b"));
        ml.update_cluster_topology(vec![m("a", 1), m("b", 2), m("c", 3)]);
        assert!(!ml.contains_member_id("b"));
        ml.unblock(&["b".into()]);
        assert!(ml.contains_member_id("b"));
        ml.block(&["c".into()], Some(Duration::from_millis(1)));
        assert!(!ml.contains_member_id("c"));
        std::thread::sleep(Duration::from_millis(5));
        assert!(!ml.is_blocked("c"));
        // The next provider update readmits it.
        ml.update_cluster_topology(vec![m("a", 1), m("b", 2), m("c", 3)]);
        assert!(ml.contains_member_id("c"));
        system.shutdown();
    }

    #[test]
    fn a_handler_may_block_while_an_event_is_published() {
        let system = ActorSystem::new();
        let ml = MemberList::new(&system, "a");
        let calls = Arc::new(AtomicUsize::new(0));
        let (ml2, c2) = (ml.clone(), calls.clone());
        let _ = system
            .event_stream()
            .subscribe_to::<ClusterTopology, _>(move |t| {
                c2.fetch_add(1, Ordering::SeqCst);
                if t.members.iter().any(|m| m.id == "bad") {
                    ml2.block(&["bad".into()], None);
                }
            });
        ml.update_cluster_topology(vec![m("a", 1), m("bad", 2)]);
        assert_eq!(ids(&ml.members()), ["a"]);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        system.shutdown();
    }

    #[test]
    fn waiters_see_a_topology_only_after_its_handlers_ran() {
        let system = ActorSystem::new();
        let ml = MemberList::new(&system, "a");
        let seen_by_waiters_during_handler = Arc::new(Mutex::new(Vec::new()));
        let (ml2, seen) = (ml.clone(), seen_by_waiters_during_handler.clone());
        let _ = system
            .event_stream()
            .subscribe_to::<ClusterTopology, _>(move |t| {
                // The handler already reads the new topology...
                assert_eq!(ml2.topology_hash(), t.topology_hash);
                // ...but waiters do not see it yet.
                seen.lock()
                    .push(ml2.watch().borrow().hash() == t.topology_hash);
            });
        ml.update_cluster_topology(vec![m("a", 1)]);
        ml.update_cluster_topology(vec![m("a", 1), m("b", 2)]);
        assert_eq!(*seen_by_waiters_during_handler.lock(), [false, false]);
        assert_eq!(ml.watch().borrow().hash(), ml.topology_hash());
        let ready = system
            .runtime()
            .block_on(ml.wait_until(Duration::from_secs(5), |t| t.member("b").is_some()));
        assert!(ready);
        system.shutdown();
    }

    #[test]
    fn owner_follows_the_topology() {
        let system = ActorSystem::new();
        let ml = MemberList::new(&system, "a");
        assert_eq!(ml.owner("k", "x"), None);
        ml.update_cluster_topology(vec![
            Member::new("127.0.0.1", 8090, "a", ["Hello"]),
            Member::new("127.0.0.1", 8091, "b", ["Hello"]),
            Member::new("127.0.0.1", 8092, "c", ["Hello"]),
        ]);
        assert_eq!(ml.owner("Hello", "user-3").unwrap(), "127.0.0.1:8091");
        assert_eq!(ml.owner("Hello", "user-2").unwrap(), "127.0.0.1:8090");
        system.shutdown();
    }
}
