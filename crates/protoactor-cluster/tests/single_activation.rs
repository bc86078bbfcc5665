//! "A virtual actor is never two actors", checked in one process: members on a test provider
//! whose views can lag (each node gets the member list after its own delay, as nodes polling
//! a provider do), and a duplicate-activation detector: every grain logs its activation and
//! deactivation with its member and the time, and the tests assert that no two activations
//! of one identity were ever alive at once, and that once the topology is stable every
//! identity lives exactly once, on its owner (zero orphans).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use protoactor::prelude::*;
use protoactor::Config;
use protoactor_cluster::hash::owner_of;
use protoactor_cluster::{
    ActivationRequest, ActivationResponse, CallOptions, Cluster, ClusterConfig, ClusterError,
    ClusterIdentity, ClusterProvider, DistHashIdentityLookup, GrainContext, Kind, Member,
    ProviderContext, ProviderFuture,
};
#[path = "../../protoactor-remote/shared/messages.rs"]
mod messages;
use messages::{Echo, Response};
use protoactor_remote::{Remote, RemoteConfig, WireVariant};

/// Generous upper bound for things that must happen (never a timing assertion).
const WAIT: Duration = Duration::from_secs(30);
const KIND: &str = "hello";

// ------------------------------------------------------------------ the detector

/// One activation of a grain: where, and from when to when (`None`: still alive).
#[derive(Debug, Clone)]
struct Life {
    member: String,
    started: Instant,
    stopped: Option<Instant>,
}

/// Every activation of every identity, across all members of the test.
#[derive(Clone, Default)]
struct ActivationLog(Arc<Mutex<HashMap<String, Vec<Life>>>>);

impl ActivationLog {
    fn started(&self, identity: &str, member: &str) -> usize {
        let mut log = self.0.lock();
        let lives = log.entry(identity.to_string()).or_default();
        lives.push(Life {
            member: member.to_string(),
            started: Instant::now(),
            stopped: None,
        });
        lives.len() - 1
    }

    fn stopped(&self, identity: &str, index: usize) {
        if let Some(l) = self
            .0
            .lock()
            .get_mut(identity)
            .and_then(|v| v.get_mut(index))
        {
            l.stopped = Some(Instant::now());
        }
    }

    /// Pairs of activations of one identity that were alive at the same time.
    fn overlaps(&self) -> Vec<String> {
        let log = self.0.lock();
        let mut out = Vec::new();
        for (id, lives) in log.iter() {
            let mut lives = lives.clone();
            lives.sort_by_key(|l| l.started);
            for w in lives.windows(2) {
                let (a, b) = (&w[0], &w[1]);
                if a.stopped.is_none_or(|s| s > b.started) {
                    out.push(format!("{id}: {} and {}", a.member, b.member));
                }
            }
        }
        out.sort();
        out
    }

    /// The members where each identity is alive now.
    fn alive(&self) -> BTreeMap<String, Vec<String>> {
        self.0
            .lock()
            .iter()
            .map(|(id, lives)| {
                let at = lives
                    .iter()
                    .filter(|l| l.stopped.is_none())
                    .map(|l| l.member.clone())
                    .collect();
                (id.clone(), at)
            })
            .collect()
    }

    fn activations(&self, identity: &str) -> usize {
        self.0.lock().get(identity).map_or(0, Vec::len)
    }
}

/// The test grain: logs its life in the [`ActivationLog`] and answers `Echo` with
/// `Response { some_value: "<identity>|<member address>" }`. Its `Stopping` takes
/// `stop_work` (a grain saving its state), so an overlap with a successor would show.
struct Grain {
    log: ActivationLog,
    stop_work: Duration,
    entry: Option<(String, usize)>,
}

impl Actor for Grain {
    fn receive(&mut self, ctx: &mut Context) {
        if ctx.message_as::<Started>().is_some() {
            let me = ctx.cluster_identity().expect("identity").identity;
            let at = ctx.cluster().expect("cluster").address().to_string();
            let i = self.log.started(&me, &at);
            self.entry = Some((me, i));
        } else if ctx.message_as::<Stopping>().is_some() {
            if !self.stop_work.is_zero() {
                std::thread::sleep(self.stop_work);
            }
        } else if ctx.message_as::<Stopped>().is_some() {
            if let Some((me, i)) = self.entry.take() {
                self.log.stopped(&me, i);
            }
        } else if ctx.message_as::<Echo>().is_some() {
            let me = ctx.cluster_identity().expect("identity").identity;
            let at = ctx.cluster().expect("cluster").address().to_string();
            ctx.respond(Response {
                some_value: format!("{me}|{at}"),
                ..Default::default()
            });
        }
    }
}

// ------------------------------------------------------------------ a provider with lag

struct Subscriber {
    ctx: ProviderContext,
    /// How late this node sees each member list.
    lag: Duration,
    tx: tokio::sync::mpsc::UnboundedSender<(Instant, Vec<Member>)>,
}

/// The membership of one test cluster; each node sees every change after its own lag, in
/// order (a node that polls its provider sees joins and leaves late).
#[derive(Default)]
struct LagAgent {
    members: Mutex<BTreeMap<String, Member>>,
    subscribers: Mutex<Vec<Subscriber>>,
}

impl LagAgent {
    fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn push(&self) {
        // Under the subscribers' lock: every node gets the lists in one order.
        let subs = self.subscribers.lock();
        let list: Vec<Member> = self.members.lock().values().cloned().collect();
        for s in subs.iter() {
            if s.lag.is_zero() {
                s.ctx.update_members(list.clone());
            } else {
                let _ = s.tx.send((Instant::now() + s.lag, list.clone()));
            }
        }
    }

    fn subscribe(&self, ctx: ProviderContext, lag: Duration) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<Member>)>();
        let c = ctx.clone();
        ctx.system().runtime().spawn(async move {
            while let Some((at, list)) = rx.recv().await {
                // The simulated lag of this node's view.
                tokio::time::sleep_until(at.into()).await;
                c.update_members(list);
            }
        });
        self.subscribers.lock().push(Subscriber { ctx, lag, tx });
        self.push();
    }

    fn register(&self, m: Member) {
        self.members.lock().insert(m.id.clone(), m);
        self.push();
    }

    fn deregister(&self, id: &str) {
        self.members.lock().remove(id);
        self.push();
    }
}

struct LagProvider {
    agent: Arc<LagAgent>,
    lag: Duration,
    id: Mutex<Option<String>>,
}

impl ClusterProvider for LagProvider {
    fn start_member(&self, ctx: ProviderContext) -> Result<(), ClusterError> {
        let me = ctx.self_member().clone();
        *self.id.lock() = Some(me.id.clone());
        self.agent.subscribe(ctx, self.lag);
        self.agent.register(me);
        Ok(())
    }
    fn start_client(&self, ctx: ProviderContext) -> Result<(), ClusterError> {
        self.agent.subscribe(ctx, self.lag);
        Ok(())
    }
    fn shutdown(&self, graceful: bool) -> ProviderFuture {
        if let (true, Some(id)) = (graceful, self.id.lock().take()) {
            self.agent.deregister(&id);
        }
        Box::pin(async { Ok(()) })
    }
}

// ------------------------------------------------------------------ nodes

struct Node {
    system: ActorSystem,
    cluster: Cluster,
}

fn start_remote() -> (ActorSystem, Arc<Remote>) {
    protoactor_testkit::logs::init_test_logs("warn");
    let system = ActorSystem::with_config(Config::default().with_worker_threads(2));
    let remote = Remote::start(
        &system,
        RemoteConfig::local().with_wire_variant(WireVariant::Legacy2024),
    )
    .expect("remote starts");
    remote.serialization().register::<Echo>();
    remote.serialization().register::<Response>();
    (system, remote)
}

fn member(agent: &Arc<LagAgent>, log: &ActivationLog, lag: Duration, stop_work: Duration) -> Node {
    member_with(agent, log, lag, stop_work, |c| c)
}

fn member_with(
    agent: &Arc<LagAgent>,
    log: &ActivationLog,
    lag: Duration,
    stop_work: Duration,
    config: impl FnOnce(ClusterConfig) -> ClusterConfig,
) -> Node {
    let (system, remote) = start_remote();
    let l = log.clone();
    let props = Props::from_producer(move || Grain {
        log: l.clone(),
        stop_work,
        entry: None,
    });
    let provider = LagProvider {
        agent: agent.clone(),
        lag,
        id: Mutex::new(None),
    };
    let config = config(
        ClusterConfig::new("single", provider, DistHashIdentityLookup::new())
            .with_kind(Kind::new(KIND, props)),
    );
    let cluster = Cluster::start_member(&system, &remote, config).expect("member starts");
    Node { system, cluster }
}

fn client(agent: &Arc<LagAgent>, lag: Duration) -> Node {
    let (system, remote) = start_remote();
    let provider = LagProvider {
        agent: agent.clone(),
        lag,
        id: Mutex::new(None),
    };
    let config = ClusterConfig::new("single", provider, DistHashIdentityLookup::new());
    let cluster = Cluster::start_client(&system, &remote, config).expect("client starts");
    Node { system, cluster }
}

fn ids_of(members: &[&Node]) -> Vec<String> {
    let mut ids: Vec<String> = members
        .iter()
        .map(|n| n.cluster.self_member().id.clone())
        .collect();
    ids.sort();
    ids
}

/// Waits until every node's topology has exactly the members `members`.
async fn wait_for_topology(nodes: &[&Node], members: &[&Node]) {
    let ids = ids_of(members);
    for n in nodes {
        let ok = n
            .cluster
            .member_list()
            .wait_until(WAIT, |t| {
                t.members().map(|m| m.id.as_str()).collect::<Vec<_>>() == ids
            })
            .await;
        assert!(ok, "{} never saw the topology {ids:?}", n.cluster.address());
    }
}

fn owner(members: &[&Node], identity: &str) -> String {
    let ms: Vec<Member> = members
        .iter()
        .map(|n| n.cluster.self_member().clone())
        .collect();
    owner_of(&ms, KIND, identity).expect("an owner").address()
}

/// One call of every identity through `via`, all at once; identity -> the answering member
/// (or the error).
async fn call_round(
    via: &Cluster,
    identities: &[String],
) -> BTreeMap<String, Result<String, String>> {
    let mut set = tokio::task::JoinSet::new();
    for id in identities {
        let (c, id) = (via.clone(), id.clone());
        set.spawn(async move {
            let r = c
                .request_as::<Response, _>(
                    id.as_str(),
                    KIND,
                    Echo {
                        message: "hi".into(),
                        sender: None,
                    },
                    &CallOptions::default(),
                )
                .await
                .map(|r| r.some_value.rsplit('|').next().unwrap_or("").to_string())
                .map_err(|e| e.to_string());
            (id, r)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        let (id, r) = r.expect("call task");
        out.insert(id, r);
    }
    out
}

/// Waits until every identity in `identities` is alive exactly once, on its owner in
/// `members`; panics with the differences at the deadline.
async fn await_single_activations(log: &ActivationLog, members: &[&Node], identities: &[String]) {
    let expected: BTreeMap<String, Vec<String>> = identities
        .iter()
        .map(|id| (id.clone(), vec![owner(members, id)]))
        .collect();
    let deadline = Instant::now() + WAIT;
    loop {
        let alive = log.alive();
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(id, at)| alive.get(*id).is_some_and(|a| a != *at))
            .map(|(id, at)| format!("{id}: alive at {:?}, owner {at:?}", alive.get(id)))
            .collect();
        if wrong.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            let first = wrong[0].split(':').next().unwrap_or("").to_string();
            let lives = log.0.lock().get(&first).cloned();
            panic!(
                "{} identities are not alive exactly once on their owner, e.g. {:?}; {first}: {lives:?}",
                wrong.len(),
                &wrong[..wrong.len().min(5)]
            );
        }
        // Polling the log (shared memory, no event to wait on); bounded by the deadline.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn shutdown(nodes: Vec<Node>) {
    for n in nodes {
        n.cluster.shutdown(true).await;
        n.system.shutdown();
    }
}

fn identities(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

// ------------------------------------------------------------------ tests

/// A caller whose view lags behind a join keeps asking the former owner of the identities
/// that moved. The former owner refuses them (its view gives them to the newcomer), the
/// caller refreshes its view and asks the newcomer: no call fails, and once the topology is
/// stable each identity lives once, on its owner. (Before, the former owner activated them
/// again and never stopped these orphans.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_with_a_lagging_view_leaves_no_orphan_when_a_member_joins() {
    let agent = LagAgent::new();
    let log = ActivationLog::default();
    let zero = Duration::ZERO;
    let mut nodes: Vec<Node> = (0..3).map(|_| member(&agent, &log, zero, zero)).collect();
    let lagging = client(&agent, Duration::from_millis(400));
    let all: Vec<&Node> = nodes.iter().collect();
    let mut everyone = all.clone();
    everyone.push(&lagging);
    wait_for_topology(&everyone, &all).await;
    let ids = identities("lag", 200);
    let first = call_round(&lagging.cluster, &ids).await;
    assert!(first.values().all(Result::is_ok), "{first:?}");

    // A fourth member joins; the lagging client learns it 400 ms after the members.
    let old_hash = lagging.cluster.member_list().topology_hash();
    nodes.push(member(&agent, &log, zero, zero));
    let four: Vec<&Node> = nodes.iter().collect();
    wait_for_topology(&four, &four).await;
    let newcomer = nodes[3].cluster.address().to_string();
    let moved: Vec<String> = ids
        .iter()
        .filter(|id| owner(&four, id) == newcomer)
        .cloned()
        .collect();
    assert!(
        !moved.is_empty(),
        "the newcomer owns some of 200 identities"
    );
    assert_eq!(
        lagging.cluster.member_list().topology_hash(),
        old_hash,
        "the client still has the old view"
    );
    // Calls through the stale view, until (and once after) the client sees the newcomer.
    let mut rounds = 0;
    loop {
        let saw_it = lagging.cluster.member_list().topology_hash() != old_hash;
        let r = call_round(&lagging.cluster, &moved).await;
        let failed: Vec<_> = r.iter().filter(|(_, r)| r.is_err()).collect();
        assert!(
            failed.is_empty(),
            "calls failed in round {rounds}: {failed:?}"
        );
        rounds += 1;
        if saw_it {
            for (id, at) in &r {
                assert_eq!(at.as_ref().unwrap(), &newcomer, "{id}");
            }
            break;
        }
    }
    everyone = four.clone();
    everyone.push(&lagging);
    wait_for_topology(&everyone, &four).await;
    await_single_activations(&log, &four, &ids).await;
    let overlaps = log.overlaps();
    assert!(overlaps.is_empty(), "activations overlapped: {overlaps:?}");
    drop((four, everyone));
    nodes.push(lagging);
    shutdown(nodes).await;
}

/// An `ActivationRequest` for an identity the member's view gives to another member is
/// answered `failed` with the member's topology hash, whatever the caller sent as its hash
/// (a current one, an old one, or Go's 0), and activates nothing; the owner activates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activation_request_to_a_member_that_does_not_own_the_identity_is_refused() {
    let agent = LagAgent::new();
    let log = ActivationLog::default();
    let zero = Duration::ZERO;
    let a = member(&agent, &log, zero, zero);
    wait_for_topology(&[&a], &[&a]).await;
    let alone = a.cluster.member_list().topology_hash();
    let b = member(&agent, &log, zero, zero);
    wait_for_topology(&[&a, &b], &[&a, &b]).await;
    let now = a.cluster.member_list().topology_hash();
    let on_b = identities("refuse", 100)
        .into_iter()
        .find(|id| owner(&[&a, &b], id) == b.cluster.address())
        .expect("b owns one of 100 identities");
    let activator = Pid::new(a.cluster.address(), "partition-activator");
    for hash in [now, alone, 0] {
        let request = ActivationRequest {
            cluster_identity: Some(ClusterIdentity::new(on_b.as_str(), KIND)),
            request_id: String::new(),
            topology_hash: hash,
        };
        // From b's root, so the request crosses the wire as a Go caller's would.
        let reply = b
            .system
            .root()
            .request_future(&activator, request, WAIT)
            .await
            .expect("an answer");
        let reply = reply
            .downcast_ref::<ActivationResponse>()
            .expect("an ActivationResponse");
        assert!(reply.failed, "hash {hash}: {reply:?}");
        assert!(reply.pid.is_none());
        assert_eq!(reply.topology_hash, now, "the refusal carries a's view");
    }
    assert_eq!(log.activations(&on_b), 0, "nothing was activated on a");
    // The owner activates it.
    let request = ActivationRequest {
        cluster_identity: Some(ClusterIdentity::new(on_b.as_str(), KIND)),
        request_id: String::new(),
        topology_hash: now,
    };
    let reply = a
        .system
        .root()
        .request_future(
            &Pid::new(b.cluster.address(), "partition-activator"),
            request,
            WAIT,
        )
        .await
        .expect("an answer");
    let reply = reply
        .downcast_ref::<ActivationResponse>()
        .expect("response");
    assert!(!reply.failed);
    assert_eq!(
        reply.pid.as_ref().unwrap().to_pid().address(),
        b.cluster.address()
    );
    assert_eq!(log.activations(&on_b), 1);
    shutdown(vec![a, b]).await;
}

/// A member joins while its future identities are active elsewhere (each takes 400 ms to
/// stop), and calls for them come at once: the newcomer activates each only after the former
/// owner's activation ended (its `Stopping`/`Stopped` done and its `ActivationTerminated`
/// received), so no two activations of one identity run at once. (With no hand-off they
/// overlap.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_member_activates_a_moved_identity_only_after_the_former_owner_released_it() {
    let agent = LagAgent::new();
    let log = ActivationLog::default();
    let (zero, slow) = (Duration::ZERO, Duration::from_millis(400));
    // A hand-off bound above what the stops take (about 3 grains per member, 2 at a time),
    // below the calls' 5 s deadline: identities never active before wait for all of it.
    let handoff = |c: ClusterConfig| c.with_handoff_timeout(Duration::from_secs(2));
    let mut nodes: Vec<Node> = (0..3)
        .map(|_| member_with(&agent, &log, zero, slow, handoff))
        .collect();
    let three: Vec<&Node> = nodes.iter().collect();
    wait_for_topology(&three, &three).await;
    let ids = identities("join", 30);
    let first = call_round(&nodes[0].cluster, &ids).await;
    assert!(first.values().all(Result::is_ok), "{first:?}");

    // The members see the newcomer as it starts (no lag): call at once.
    nodes.push(member_with(&agent, &log, zero, slow, handoff));
    let r = call_round(&nodes[0].cluster, &ids).await;
    let four: Vec<&Node> = nodes.iter().collect();
    wait_for_topology(&four, &four).await;
    let newcomer = nodes[3].cluster.address().to_string();
    let mut moved = 0;
    for (id, at) in &r {
        let at = at.as_ref().unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(*at, owner(&four, id), "{id}");
        moved += usize::from(*at == newcomer);
    }
    assert!(moved > 0, "identities moved to the newcomer");
    await_single_activations(&log, &four, &ids).await;
    let overlaps = log.overlaps();
    assert!(overlaps.is_empty(), "activations overlapped: {overlaps:?}");
    drop(four);
    shutdown(nodes).await;
}

/// A member leaves gracefully while a client and a member keep calling its identities: it
/// stops its grains before it leaves anyone's topology, so their new owners activate them
/// only after the old activations ended; no call fails meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_leaves_gracefully_stops_its_grains_before_they_are_activated_elsewhere() {
    let agent = LagAgent::new();
    let log = ActivationLog::default();
    let (zero, slow) = (Duration::ZERO, Duration::from_millis(30));
    let mut nodes: Vec<Node> = (0..3).map(|_| member(&agent, &log, zero, slow)).collect();
    let caller = client(&agent, zero);
    let three: Vec<&Node> = nodes.iter().collect();
    let mut everyone = three.clone();
    everyone.push(&caller);
    wait_for_topology(&everyone, &three).await;
    let ids = identities("leave", 150);
    let first = call_round(&caller.cluster, &ids).await;
    assert!(first.values().all(Result::is_ok), "{first:?}");
    drop((three, everyone));
    let leaving = nodes.pop().unwrap();
    let leaving_address = leaving.cluster.address().to_string();
    assert!(
        first
            .values()
            .any(|a| a.as_deref() == Ok(leaving_address.as_str())),
        "the leaving member hosts some identities"
    );

    let stop = tokio::spawn({
        let c = leaving.cluster.clone();
        async move { c.shutdown(true).await }
    });
    let mut rounds = 0;
    while !stop.is_finished() || rounds == 0 {
        for via in [&caller.cluster, &nodes[0].cluster] {
            let r = call_round(via, &ids).await;
            let failed: Vec<_> = r.iter().filter(|(_, r)| r.is_err()).collect();
            assert!(
                failed.is_empty(),
                "calls failed in round {rounds}: {failed:?}"
            );
        }
        rounds += 1;
    }
    stop.await.expect("shutdown");
    leaving.system.shutdown();
    let two: Vec<&Node> = nodes.iter().collect();
    let mut everyone = two.clone();
    everyone.push(&caller);
    wait_for_topology(&everyone, &two).await;
    let after = call_round(&caller.cluster, &ids).await;
    for (id, at) in &after {
        assert_eq!(at.as_ref().unwrap(), &owner(&two, id), "{id}");
    }
    await_single_activations(&log, &two, &ids).await;
    let overlaps = log.overlaps();
    assert!(overlaps.is_empty(), "activations overlapped: {overlaps:?}");
    drop((two, everyone));
    nodes.push(caller);
    shutdown(nodes).await;
}

// ------------------------------------------------------------------ conservation

/// What every account holds before any transfer.
const OPENING: i64 = 100;

/// A bank account grain whose balance is journaled (one event per change, the delta, in
/// protoactor-persistence's store shared by all members): `Echo { "balance" }` answers the
/// balance it serves; `Echo { "add <delta>" }` refuses to go below zero, else stores the
/// event at its next index and then applies it ("ok"; "conflict" when the index was taken,
/// i.e. another activation of the same account wrote first).
struct Account {
    store: Arc<dyn protoactor_persistence::Provider>,
    log: ActivationLog,
    balance: i64,
    next: u64,
    entry: Option<(String, usize)>,
}

impl Account {
    fn wait<T>(ctx: &Context, fut: impl std::future::Future<Output = T>) -> T {
        let rt = ctx.system().runtime().clone();
        tokio::task::block_in_place(|| rt.block_on(fut))
    }
}

impl Actor for Account {
    fn receive(&mut self, ctx: &mut Context) {
        use protoactor_persistence::PersistentMessage;
        let me = ctx.cluster_identity().expect("identity").identity;
        let key = format!("account/{me}");
        if ctx.message_as::<Started>().is_some() {
            let at = ctx.cluster().expect("cluster").address().to_string();
            self.entry = Some((me.clone(), self.log.started(&me, &at)));
            let store = self.store.clone();
            let events = Self::wait(ctx, store.get_events(&key, 0, usize::MAX)).expect("journal");
            self.balance = OPENING;
            for e in &events {
                let delta = Echo::decode_payload(&e.record.type_name, &e.record.payload)
                    .expect("an account event");
                self.balance += delta.message.parse::<i64>().expect("a delta");
            }
            self.next = events.last().map_or(0, |e| e.index + 1);
        } else if ctx.message_as::<Stopped>().is_some() {
            if let Some((me, i)) = self.entry.take() {
                self.log.stopped(&me, i);
            }
        } else if let Some(cmd) = ctx.message_as::<Echo>().map(|e| e.message.clone()) {
            let answer = if cmd == "balance" {
                self.balance.to_string()
            } else if let Some(delta) = cmd.strip_prefix("add ").and_then(|d| d.parse::<i64>().ok())
            {
                if self.balance + delta < 0 {
                    "insufficient".to_string()
                } else {
                    let event = Echo {
                        message: delta.to_string(),
                        sender: None,
                    };
                    let store = self.store.clone();
                    match Self::wait(ctx, store.persist_event(&key, self.next, event.to_record())) {
                        Ok(()) => {
                            self.balance += delta;
                            self.next += 1;
                            "ok".to_string()
                        }
                        Err(e) => format!("conflict {e}"),
                    }
                }
            } else {
                format!("bad command {cmd}")
            };
            ctx.respond(Response {
                some_value: answer,
                ..Default::default()
            });
        }
    }
}

fn bank_member(
    agent: &Arc<LagAgent>,
    log: &ActivationLog,
    store: &Arc<dyn protoactor_persistence::Provider>,
) -> Node {
    let (system, remote) = start_remote();
    let (l, s) = (log.clone(), store.clone());
    let props = Props::from_producer(move || Account {
        store: s.clone(),
        log: l.clone(),
        balance: 0,
        next: 0,
        entry: None,
    });
    let provider = LagProvider {
        agent: agent.clone(),
        lag: Duration::ZERO,
        id: Mutex::new(None),
    };
    let config = ClusterConfig::new("single", provider, DistHashIdentityLookup::new())
        .with_kind(Kind::new(KIND, props));
    let cluster = Cluster::start_member(&system, &remote, config).expect("member starts");
    Node { system, cluster }
}

async fn account(via: &Cluster, id: &str, cmd: String) -> Result<String, ClusterError> {
    via.request_as::<Response, _>(
        id,
        KIND,
        Echo {
            message: cmd,
            sender: None,
        },
        &CallOptions::default(),
    )
    .await
    .map(|r| r.some_value)
}

/// `n` transfers between random accounts through `via`, 4 at a time: a withdrawal, then
/// (if it was "ok") the deposit, which must succeed. Returns the answers other than "ok"
/// and "insufficient".
async fn transfers(via: Cluster, accounts: Vec<String>, n: usize) -> Vec<String> {
    let mut set = tokio::task::JoinSet::new();
    for w in 0..4 {
        let (via, accounts) = (via.clone(), accounts.clone());
        set.spawn(async move {
            let mut odd = Vec::new();
            for k in 0..n / 4 {
                let i = (k * 7 + w * 13) % accounts.len();
                let j = (i + 1 + (k * 3 + w) % (accounts.len() - 1)) % accounts.len();
                let amount = 1 + (k % 9) as i64;
                match account(&via, &accounts[i], format!("add -{amount}")).await {
                    Ok(a) if a == "ok" => {}
                    Ok(a) if a == "insufficient" => continue,
                    other => {
                        odd.push(format!("withdraw {}: {other:?}", accounts[i]));
                        continue;
                    }
                }
                match account(&via, &accounts[j], format!("add {amount}")).await {
                    Ok(a) if a == "ok" => {}
                    other => odd.push(format!("deposit {} lost {amount}: {other:?}", accounts[j])),
                }
            }
            odd
        });
    }
    let mut odd = Vec::new();
    while let Some(r) = set.join_next().await {
        odd.extend(r.expect("transfer task"));
    }
    odd
}

/// The balances the grains serve, summed; and the sum of the journals.
async fn totals(
    via: &Cluster,
    accounts: &[String],
    store: &Arc<dyn protoactor_persistence::Provider>,
) -> (i64, i64) {
    use protoactor_persistence::PersistentMessage;
    let mut served = 0;
    let mut journaled = 0;
    for id in accounts {
        let b = account(via, id, "balance".into()).await.expect("a balance");
        served += b.parse::<i64>().expect("a number");
        let events = store
            .get_events(&format!("account/{id}"), 0, usize::MAX)
            .await
            .expect("journal");
        journaled += OPENING;
        for e in events {
            let d = Echo::decode_payload(&e.record.type_name, &e.record.payload).expect("event");
            journaled += d.message.parse::<i64>().expect("delta");
        }
    }
    (served, journaled)
}

/// Conservation, in the shape of a bank: 30 accounts journaled in one store, transfers
/// running while a member joins (the client driving them sees it 300 ms late) and while a
/// member leaves gracefully: after each, the balances the grains serve add up to the opening
/// total and the journals agree. Then a member dies during transfers (its registration then
/// expires): the served balances still equal the journals. No write ever conflicted (no
/// second activation of an account wrote) and no two activations of an account overlapped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_between_journaled_accounts_conserve_money_through_joins_leaves_and_deaths() {
    let agent = LagAgent::new();
    let log = ActivationLog::default();
    let store: Arc<dyn protoactor_persistence::Provider> =
        Arc::new(protoactor_persistence::InMemoryProvider::new());
    let mut nodes: Vec<Node> = (0..3).map(|_| bank_member(&agent, &log, &store)).collect();
    let driver = client(&agent, Duration::from_millis(300));
    let accounts = identities("acct", 30);
    let total = OPENING * accounts.len() as i64;
    let settle = |nodes: &Vec<Node>| {
        let members: Vec<String> = ids_of(&nodes.iter().collect::<Vec<_>>());
        let ml = driver.cluster.member_list().clone();
        async move {
            assert!(
                ml.wait_until(WAIT, |t| t
                    .members()
                    .map(|m| m.id.clone())
                    .collect::<Vec<_>>()
                    == members)
                    .await,
                "the driver never saw the topology"
            );
        }
    };
    settle(&nodes).await;
    let odd = transfers(driver.cluster.clone(), accounts.clone(), 200).await;
    assert!(odd.is_empty(), "{odd:?}");
    assert_eq!(
        totals(&driver.cluster, &accounts, &store).await,
        (total, total)
    );

    // A member joins during transfers.
    let run = tokio::spawn(transfers(driver.cluster.clone(), accounts.clone(), 200));
    nodes.push(bank_member(&agent, &log, &store));
    let odd = run.await.expect("transfers");
    assert!(odd.is_empty(), "join: {odd:?}");
    settle(&nodes).await;
    assert_eq!(
        totals(&driver.cluster, &accounts, &store).await,
        (total, total),
        "after the join"
    );

    // A member leaves gracefully during transfers.
    let run = tokio::spawn(transfers(driver.cluster.clone(), accounts.clone(), 200));
    let leaving = nodes.remove(1);
    leaving.cluster.shutdown(true).await;
    leaving.system.shutdown();
    let odd = run.await.expect("transfers");
    assert!(odd.is_empty(), "leave: {odd:?}");
    settle(&nodes).await;
    assert_eq!(
        totals(&driver.cluster, &accounts, &store).await,
        (total, total),
        "after the leave"
    );

    // A member dies during transfers; its registration expires. A command the dead member
    // handled but could not answer is lost or retried (at most once is all a call promises),
    // so the total may move here; what must hold is that every grain serves what its journal
    // says (no stale activation answers) and no second activation wrote.
    let run = tokio::spawn(transfers(driver.cluster.clone(), accounts.clone(), 200));
    let dead = nodes.remove(0);
    let dead_id = dead.cluster.self_member().id.clone();
    dead.cluster.shutdown(false).await;
    dead.system.shutdown();
    agent.deregister(&dead_id);
    let odd = run.await.expect("transfers");
    assert!(
        odd.iter().all(|o| !o.contains("conflict")),
        "death: {odd:?}"
    );
    settle(&nodes).await;
    let (served, journaled) = totals(&driver.cluster, &accounts, &store).await;
    assert_eq!(served, journaled, "after the death ({odd:?})");

    let overlaps = log.overlaps();
    assert!(overlaps.is_empty(), "activations overlapped: {overlaps:?}");
    nodes.push(driver);
    shutdown(nodes).await;
}

/// `attempt_timeout` bounds the activation round trip too: a member whose placement actor
/// never answers (it is in the topology, its `partition-activator` swallows requests) costs
/// a call `max_attempts` × `attempt_timeout`, not the activation timeout (5 s) per attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempt_timeout_bounds_the_activation_round_trip() {
    let agent = LagAgent::new();
    let log = ActivationLog::default();
    let a = member(&agent, &log, Duration::ZERO, Duration::ZERO);
    // A node that looks like a member hosting the kind but never answers activations.
    let (silent_system, silent_remote) = start_remote();
    protoactor_cluster::cluster::register_cluster_types(silent_remote.serialization());
    silent_system
        .root()
        .spawn_named(&Props::from_func(|_| {}), "partition-activator")
        .expect("spawn");
    let (host, port) = silent_remote.address().rsplit_once(':').expect("host:port");
    let silent = Member::new(host, port.parse::<u16>().expect("port"), "silent", [KIND]);
    agent.register(silent.clone());
    let both = {
        let mut ids = vec![a.cluster.self_member().id.clone(), "silent".to_string()];
        ids.sort();
        ids
    };
    assert!(
        a.cluster
            .member_list()
            .wait_until(WAIT, |t| t
                .members()
                .map(|m| m.id.clone())
                .collect::<Vec<_>>()
                == both)
            .await
    );
    let on_silent = identities("silent", 100)
        .into_iter()
        .find(|id| {
            owner_of(&[a.cluster.self_member().clone(), silent.clone()], KIND, id)
                .map(|m| m.id.as_str())
                == Some("silent")
        })
        .expect("the silent member owns one of 100 identities");
    let opts = CallOptions::default()
        .with_timeout(Duration::from_secs(20))
        .with_attempt_timeout(Duration::from_millis(200))
        .with_max_attempts(2);
    let started = Instant::now();
    let r = a
        .cluster
        .request_as::<Response, _>(
            on_silent.as_str(),
            KIND,
            Echo {
                message: "hi".into(),
                sender: None,
            },
            &opts,
        )
        .await;
    let took = started.elapsed();
    assert!(
        matches!(r, Err(ClusterError::RetriesExhausted { attempts: 2, .. })),
        "{r:?}"
    );
    // Two activation timeouts (5 s each) would take 10 s.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    shutdown(vec![a]).await;
    silent_remote.shutdown();
    silent_system.shutdown();
}
