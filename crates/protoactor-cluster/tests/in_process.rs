//! Rust-only clusters in one process: several members (each its own actor system and remote on
//! a loopback port) on the test provider.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use protoactor::prelude::*;
use protoactor::Config;
use protoactor_cluster::hash::owner_of;
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{
    ActivationRequest, ActivationResponse, ActivationTerminated, CallOptions, Cluster,
    ClusterConfig, ClusterError, ClusterIdentity, ClusterProvider, DistHashIdentityLookup,
    GrainContext, Kind, Member, ProviderContext, ProviderFuture,
};
#[path = "../../protoactor-remote/shared/messages.rs"]
mod messages;
use messages::{Echo, Response};
use protoactor_remote::{Remote, RemoteConfig, Serialization, WireVariant};
use protoactor_testkit::cluster::{Node, NodeBuilder};
use tokio::sync::mpsc;

/// Generous upper bound for things that must happen (never a timing assertion).
const WAIT: Duration = Duration::from_secs(30);

/// Every activation (`Started` of a grain): identity -> the addresses it started at.
type Activations = Arc<Mutex<HashMap<String, Vec<String>>>>;

/// The test grain: records its activation and answers `Echo` with
/// `Response { some_value: "<identity>|<kind>|<member address>" }`; `Echo { "stop" }` makes it
/// answer and then stop itself.
struct Hello {
    activations: Activations,
}

impl Actor for Hello {
    fn receive(&mut self, ctx: &mut Context) {
        if ctx.message_as::<Started>().is_some() {
            let me = ctx
                .cluster_identity()
                .expect("a grain knows its identity from Started on");
            let address = ctx
                .cluster()
                .expect("a grain knows its cluster")
                .address()
                .to_string();
            self.activations
                .lock()
                .entry(me.identity)
                .or_default()
                .push(address);
        } else if let Some(echo) = ctx.message_as::<Echo>() {
            let stop = echo.message == "stop";
            let me = ctx.cluster_identity().expect("identity");
            let address = ctx.cluster().expect("cluster").address().to_string();
            ctx.respond(Response {
                some_value: format!("{}|{}|{}", me.identity, me.kind, address),
                ..Default::default()
            });
            if stop {
                let pid = ctx.self_pid().clone();
                ctx.poison(&pid);
            }
        }
    }
}

/// Members of cluster `test` in this process: two worker threads each, the 2024 wire
/// variant, the grain messages registered (they cross the wire between members).
fn nodes() -> NodeBuilder {
    protoactor_testkit::logs::init_test_logs("warn");
    NodeBuilder::new("test")
        .with_system_config(Config::default().with_worker_threads(2))
        .with_remote_config(|| {
            let ser = Serialization::new();
            ser.register::<Echo>();
            ser.register::<Response>();
            RemoteConfig::local()
                .with_wire_variant(WireVariant::Legacy2024)
                .with_serialization(ser)
        })
}

fn start_remote() -> (ActorSystem, Arc<Remote>) {
    nodes().start_remote()
}

/// The `hello` kind, recording its activations in `activations`.
fn hello_kind(activations: &Activations) -> Kind {
    let a = activations.clone();
    Kind::new(
        "hello",
        Props::from_producer(move || Hello {
            activations: a.clone(),
        }),
    )
}

fn member(agent: &Arc<InMemAgent>, activations: &Activations) -> Node {
    nodes()
        .with_kind(hello_kind(activations))
        .member(TestProvider::new(agent))
}

/// A member hosting `hello` and `caller`: a caller grain asked `Echo { target }` calls the
/// hello grain `target` through its own cluster, without blocking, and answers
/// `Response { "via <caller identity>: <hello's answer>" }`.
fn member_with_caller(agent: &Arc<InMemAgent>, activations: &Activations) -> Node {
    let caller = Props::from_func(|ctx| {
        let Some(echo) = ctx.message_as::<Echo>() else {
            return;
        };
        let cluster = ctx.cluster().expect("a grain has its cluster");
        let me = ctx.cluster_identity().expect("and its identity").identity;
        let call = cluster.request_as::<Response, _>(
            echo.message.as_str(),
            "hello",
            Echo {
                message: "hi".into(),
                sender: None,
            },
            &CallOptions::default(),
        );
        ctx.reenter_after_with_context(call, move |ctx, reply| {
            let text = match reply {
                Ok(r) => format!("via {me}: {}", r.some_value),
                Err(e) => format!("via {me}: error {e}"),
            };
            ctx.respond(Response {
                some_value: text,
                ..Default::default()
            });
        });
    });
    nodes()
        .with_kind(hello_kind(activations))
        .with_kind(Kind::new("caller", caller))
        .member(TestProvider::new(agent))
}

fn client(agent: &Arc<InMemAgent>) -> Node {
    nodes().client(TestProvider::new(agent))
}

/// `n` members of one in-memory agent hosting `hello`, once every one sees all of them.
async fn cluster_of(n: usize) -> (Arc<InMemAgent>, Activations, Vec<Node>) {
    let agent = InMemAgent::new();
    let activations = Activations::default();
    let nodes: Vec<Node> = (0..n).map(|_| member(&agent, &activations)).collect();
    let all: Vec<&Node> = nodes.iter().collect();
    wait_for_topology(&all, &all).await;
    (agent, activations, nodes)
}

/// Waits until every node's topology has exactly the members of `nodes`.
async fn wait_for_topology(nodes: &[&Node], members: &[&Node]) {
    let mut ids: Vec<String> = members
        .iter()
        .map(|n| n.cluster.self_member().id.clone())
        .collect();
    ids.sort();
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

async fn shutdown(nodes: Vec<Node>) {
    for n in nodes {
        n.cluster.shutdown(true).await;
        n.system.shutdown();
    }
}

/// Calls `identity` through `node` and returns the address that hosted it.
async fn call(node: &Node, identity: &str) -> String {
    let reply: Response = node
        .cluster
        .request_as(
            identity,
            "hello",
            Echo {
                message: "hi".into(),
                sender: None,
            },
            &CallOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("call {identity} via {}: {e}", node.cluster.address()));
    let parts: Vec<&str> = reply.some_value.split('|').collect();
    assert_eq!(
        parts[..2],
        [identity, "hello"],
        "the grain sees its identity and kind"
    );
    parts[2].to_string()
}

/// Calls every identity, `calls_in_flight` at a time, each through `nodes[i % len]`;
/// returns identity -> hosting address.
async fn call_all(nodes: &[&Node], identities: &[String]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for chunk in identities.chunks(100) {
        let mut tasks = Vec::new();
        for (i, id) in chunk.iter().enumerate() {
            let cluster = nodes[i % nodes.len()].cluster.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                let reply: Result<Response, ClusterError> = cluster
                    .request_as(
                        id.as_str(),
                        "hello",
                        Echo {
                            message: "hi".into(),
                            sender: None,
                        },
                        &CallOptions::default(),
                    )
                    .await;
                (id, reply)
            }));
        }
        for t in tasks {
            let (id, reply) = t.await.expect("task");
            let reply = reply.unwrap_or_else(|e| panic!("call {id}: {e}"));
            let address = reply.some_value.rsplit('|').next().unwrap().to_string();
            out.insert(id, address);
        }
    }
    out
}

fn members_of(nodes: &[&Node]) -> Vec<Member> {
    nodes
        .iter()
        .map(|n| n.cluster.self_member().clone())
        .collect()
}

fn expected_owner(nodes: &[&Node], identity: &str) -> String {
    owner_of(&members_of(nodes), "hello", identity)
        .expect("an owner")
        .address()
}

/// A stream of the `ActivationTerminated` events published on `node`.
fn terminated_events(node: &Node) -> mpsc::UnboundedReceiver<ActivationTerminated> {
    let (tx, rx) = mpsc::unbounded_channel();
    let _ = node
        .system
        .event_stream()
        .subscribe_to::<ActivationTerminated, _>(move |t| {
            let _ = tx.send(t.clone());
        });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_identities_spread_over_three_members_each_activated_exactly_once() {
    let (_, activations, nodes) = cluster_of(3).await;
    let all: Vec<&Node> = nodes.iter().collect();

    let identities: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
    let hosts = call_all(&all, &identities).await;
    // Called again through other members: the same activations answer.
    let mut rotated = all.clone();
    rotated.rotate_left(1);
    let again = call_all(&rotated, &identities).await;
    assert_eq!(hosts, again);

    {
        let acts = activations.lock();
        let mut per_member: HashMap<&str, usize> = HashMap::new();
        for id in &identities {
            let owner = expected_owner(&all, id);
            assert_eq!(
                acts[id],
                std::slice::from_ref(&owner),
                "{id}: activated exactly once, on its owner"
            );
            assert_eq!(hosts[id], owner);
            *per_member.entry(hosts[id].as_str()).or_default() += 1;
        }
        assert_eq!(
            per_member.len(),
            3,
            "every member hosts grains: {per_member:?}"
        );
        assert!(
            per_member.values().all(|&n| n >= 100),
            "spread: {per_member:?}"
        );
    }
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_calls_to_one_identity_activate_it_once() {
    let (_, activations, nodes) = cluster_of(3).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let same: Vec<String> = vec!["contended".to_string(); 60];
    let hosts = call_all(&all, &same).await;
    assert_eq!(hosts["contended"], expected_owner(&all, "contended"));
    assert_eq!(activations.lock()["contended"].len(), 1);
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stopped_gracefully_hands_its_grains_to_the_others() {
    let (_, activations, mut nodes) = cluster_of(3).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let identities: Vec<String> = (0..300).map(|i| format!("g-{i}")).collect();
    let before = call_all(&all, &identities).await;

    let leaving = nodes.pop().unwrap();
    let gone = leaving.cluster.address().to_string();
    let moved: Vec<&String> = identities.iter().filter(|i| before[*i] == gone).collect();
    assert!(!moved.is_empty());
    leaving.cluster.shutdown(true).await;
    leaving.system.shutdown();
    let rest: Vec<&Node> = nodes.iter().collect();
    wait_for_topology(&rest, &rest).await;

    let after = call_all(&rest, &identities).await;
    {
        let acts = activations.lock();
        for id in &identities {
            assert_eq!(after[id], expected_owner(&rest, id), "{id}");
            if before[id] == gone {
                assert_eq!(acts[id].len(), 2, "{id}: re-activated once elsewhere");
            } else {
                assert_eq!(
                    after[id], before[id],
                    "{id}: a grain of a remaining member stays"
                );
                assert_eq!(acts[id].len(), 1, "{id}: not re-activated");
            }
        }
    }
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_member_takes_over_its_identities_and_the_old_activations_stop() {
    let (agent, activations, mut nodes) = cluster_of(2).await;
    let two: Vec<&Node> = nodes.iter().collect();
    // About 400 move: more than the placement actor stops at once (its window of 256).
    let identities: Vec<String> = (0..1_200).map(|i| format!("j-{i}")).collect();
    let before = call_all(&two, &identities).await;
    let mut stops: Vec<_> = nodes.iter().map(terminated_events).collect();

    nodes.push(member(&agent, &activations));
    let three: Vec<&Node> = nodes.iter().collect();
    wait_for_topology(&three, &three).await;
    // Once a member sees the new topology, its cache no longer points at old owners, so its
    // next call goes to the newcomer even while the old activation still runs.
    for n in &three {
        for id in &identities {
            if let Some(pid) = n
                .cluster
                .pid_cache()
                .get(&ClusterIdentity::new(id.as_str(), "hello"))
            {
                assert_eq!(
                    pid.address(),
                    expected_owner(&three, id),
                    "{id} cached at a non-owner"
                );
            }
        }
    }
    let newcomer = nodes[2].cluster.address().to_string();
    let moved: Vec<&String> = identities
        .iter()
        .filter(|i| expected_owner(&three, i) == newcomer)
        .collect();
    assert!(
        moved.len() > 256,
        "{} moved: fewer than one stop window",
        moved.len()
    );
    // The old owners stop exactly the activations that moved (each stop is broadcast).
    let mut stopped = Vec::new();
    for rx in stops.iter_mut().take(1) {
        while stopped.len() < moved.len() {
            let t = tokio::time::timeout(WAIT, rx.recv())
                .await
                .expect("stops")
                .expect("open");
            stopped.push(t.cluster_identity.unwrap().identity);
        }
    }
    stopped.sort();
    let mut expected: Vec<String> = moved.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(stopped, expected);

    let after = call_all(&three, &identities).await;
    for id in &identities {
        assert_eq!(after[id], expected_owner(&three, id), "{id}");
        if after[id] != before[id] {
            assert_eq!(after[id], newcomer);
        }
    }
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grain_that_stops_is_evicted_everywhere_and_reactivated_by_the_next_call() {
    let (_, activations, nodes) = cluster_of(2).await;
    let all: Vec<&Node> = nodes.iter().collect();
    // An identity hosted by the second member, called from the first.
    let id = (0..)
        .map(|i| format!("s-{i}"))
        .find(|i| expected_owner(&all, i) == nodes[1].cluster.address())
        .unwrap();
    let ci = ClusterIdentity::new(id.as_str(), "hello");
    call(&nodes[0], &id).await;
    assert!(nodes[0].cluster.pid_cache().get(&ci).is_some());

    let mut terminated = terminated_events(&nodes[0]);
    let _: Response = nodes[0]
        .cluster
        .request_as(
            id.as_str(),
            "hello",
            Echo {
                message: "stop".into(),
                sender: None,
            },
            &CallOptions::default(),
        )
        .await
        .unwrap();
    let t = tokio::time::timeout(WAIT, terminated.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.cluster_identity.as_ref(), Some(&ci));
    // ActivationTerminated reached the caller's eventstream and evicted its cache entry.
    assert!(nodes[0].cluster.pid_cache().get(&ci).is_none());

    assert_eq!(call(&nodes[0], &id).await, nodes[1].cluster.address());
    assert_eq!(activations.lock()[&id].len(), 2);
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_calls_grains_but_is_not_a_member() {
    let agent = InMemAgent::new();
    let activations = Activations::default();
    let nodes: Vec<Node> = (0..2).map(|_| member(&agent, &activations)).collect();
    let c = client(&agent);
    let members: Vec<&Node> = nodes.iter().collect();
    wait_for_topology(&[&nodes[0], &nodes[1], &c], &members).await;
    let hosts = call_all(
        &[&c],
        &(0..50).map(|i| format!("c-{i}")).collect::<Vec<_>>(),
    )
    .await;
    for (id, host) in &hosts {
        assert_eq!(host, &expected_owner(&members, id));
    }
    assert!(c.cluster.self_member().kinds.is_empty());
    let mut all = nodes;
    all.insert(0, c);
    shutdown(all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_requests_for_kinds_not_hosted_are_answered_failed() {
    let agent = InMemAgent::new();
    let activations = Activations::default();
    let n = member(&agent, &activations);
    wait_for_topology(&[&n], &[&n]).await;
    let activator = Pid::new(n.cluster.address(), "partition-activator");
    let reply = n
        .system
        .root()
        .request_future(
            &activator,
            ActivationRequest {
                cluster_identity: Some(ClusterIdentity::new("x", "nope")),
                ..Default::default()
            },
            WAIT,
        )
        .await
        .expect("an answer, not a timeout");
    let resp = reply
        .downcast_ref::<ActivationResponse>()
        .expect("ActivationResponse");
    assert!(resp.failed);
    assert!(resp.pid.is_none());

    // A kind no member hosts: a configuration error, answered at once (no retries) with
    // the reason and the topology's size.
    let err = n
        .cluster
        .request("x", "nope", Echo::default(), &CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ClusterError::NoOwner {
            kind: "nope".into(),
            members: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "no member hosts kind \"nope\": none of the 1 members of the topology registered it \
         (ClusterConfig::with_kind)"
    );
    shutdown(vec![n]).await;
}

#[test]
fn start_rejects_bad_kinds_and_a_second_cluster() {
    let agent = InMemAgent::new();
    let (system, remote) = start_remote();
    for bad in ["", "a/b"] {
        let config = ClusterConfig::new(
            "t",
            TestProvider::new(&agent),
            DistHashIdentityLookup::new(),
        )
        .with_kind(Kind::new(bad, Props::from_func(|_| {})));
        assert_eq!(
            Cluster::start_member(&system, &remote, config).unwrap_err(),
            ClusterError::InvalidKind(bad.into())
        );
    }
    let twice = ClusterConfig::new(
        "t",
        TestProvider::new(&agent),
        DistHashIdentityLookup::new(),
    )
    .with_kind(Kind::new("k", Props::from_func(|_| {})))
    .with_kind(Kind::new("k", Props::from_func(|_| {})));
    assert_eq!(
        Cluster::start_member(&system, &remote, twice).unwrap_err(),
        ClusterError::DuplicateKind("k".into())
    );
    let ok = ClusterConfig::new(
        "t",
        TestProvider::new(&agent),
        DistHashIdentityLookup::new(),
    );
    let cluster = Cluster::start_member(&system, &remote, ok.clone()).unwrap();
    assert_eq!(
        Cluster::start_member(&system, &remote, ok).unwrap_err(),
        ClusterError::AlreadyStarted
    );
    // Blocking API from a plain thread.
    assert_eq!(cluster.self_member().address(), cluster.address());
    cluster.shutdown_blocking(true);
    assert!(cluster.is_shut_down());
    system.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_cached_pid_is_evicted_on_dead_letter_and_the_call_retried() {
    let (_, activations, nodes) = cluster_of(2).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let id = "stale";
    let owner = expected_owner(&all, id);
    let ci = ClusterIdentity::new(id, "hello");
    // A PID on the owner that does not exist, as left behind by a lost ActivationTerminated.
    let ghost = Pid::new(owner.as_str(), "partition-activator/stale$zz");
    nodes[0].cluster.pid_cache().set(ci.clone(), ghost.clone());
    assert_eq!(call(&nodes[0], id).await, owner);
    let cached = nodes[0].cluster.pid_cache().get(&ci).unwrap();
    assert_ne!(cached, ghost);
    assert_eq!(activations.lock()[id].len(), 1);
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_pid_that_never_answers_is_evicted_after_the_attempt_timeout() {
    let (_, _, nodes) = cluster_of(2).await;
    let id = "silent";
    let ci = ClusterIdentity::new(id, "hello");
    // An actor that swallows everything stands in for an activation on a hung member.
    let black_hole = nodes[1].system.root().spawn(&Props::from_func(|_| {}));
    let black_hole = Pid::new(nodes[1].cluster.address(), black_hole.id());
    nodes[0]
        .cluster
        .pid_cache()
        .set(ci.clone(), black_hole.clone());
    let opts = CallOptions::default()
        .with_timeout(WAIT)
        .with_attempt_timeout(Duration::from_millis(200));
    let reply: Response = nodes[0]
        .cluster
        .request_as(
            id,
            "hello",
            Echo {
                message: "hi".into(),
                sender: None,
            },
            &opts,
        )
        .await
        .unwrap();
    assert!(reply.some_value.starts_with("silent|hello|"));
    assert_ne!(nodes[0].cluster.pid_cache().get(&ci).unwrap(), black_hole);
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_returns_the_grain_pid_in_go_s_shape_on_the_owner() {
    let (_, activations, nodes) = cluster_of(2).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let ci = ClusterIdentity::new("a/b.c", "hello");
    let pid = nodes[0].cluster.get(&ci).await.unwrap();
    assert_eq!(pid.address(), expected_owner(&all, "a/b.c"));
    let suffix = pid
        .id()
        .strip_prefix("partition-activator/a/b.c$")
        .unwrap_or_else(|| panic!("not Go's shape: {pid}"));
    assert!(
        !suffix.is_empty()
            && suffix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '~' || c == '+')
    );
    // The same activation from every member.
    assert_eq!(nodes[1].cluster.get(&ci).await.unwrap(), pid);
    // `get` returns once the activation exists, not once it has handled `Started`; a call
    // through it answers only after `Started`, so the activation is recorded by then.
    assert_eq!(call(&nodes[1], "a/b.c").await, pid.address());
    assert_eq!(activations.lock()["a/b.c"].len(), 1);
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grain_calls_another_grain_through_its_context_without_blocking() {
    let agent = InMemAgent::new();
    let activations = Activations::default();
    let nodes: Vec<Node> = (0..3)
        .map(|_| member_with_caller(&agent, &activations))
        .collect();
    let all: Vec<&Node> = nodes.iter().collect();
    wait_for_topology(&all, &all).await;
    for i in 0..20 {
        let (caller, target) = (format!("caller-{i}"), format!("target-{i}"));
        let reply: Response = nodes[i % 3]
            .cluster
            .request_as(
                caller.as_str(),
                "caller",
                Echo {
                    message: target.clone(),
                    sender: None,
                },
                &CallOptions::default(),
            )
            .await
            .unwrap();
        let owner = expected_owner(&all, &target);
        assert_eq!(
            reply.some_value,
            format!("via {caller}: {target}|hello|{owner}")
        );
    }
    shutdown(nodes).await;
}

/// A provider whose start fails, as one whose port is taken would.
struct FailingProvider;

impl ClusterProvider for FailingProvider {
    fn start_member(&self, _ctx: ProviderContext) -> Result<(), ClusterError> {
        Err(ClusterError::Provider("port in use".into()))
    }
    fn start_client(&self, _ctx: ProviderContext) -> Result<(), ClusterError> {
        Err(ClusterError::Provider("port in use".into()))
    }
    fn shutdown(&self, _graceful: bool) -> ProviderFuture {
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_provider_start_is_an_error_and_a_later_start_works() {
    let agent = InMemAgent::new();
    let (system, remote) = start_remote();
    let hello = || Kind::new("hello", Props::from_func(|_| {}));
    let bad =
        ClusterConfig::new("t", FailingProvider, DistHashIdentityLookup::new()).with_kind(hello());
    assert_eq!(
        Cluster::start_member(&system, &remote, bad).unwrap_err(),
        ClusterError::Provider("port in use".into())
    );
    let good = ClusterConfig::new(
        "t",
        TestProvider::new(&agent),
        DistHashIdentityLookup::new(),
    )
    .with_kind(hello());
    // The failed start stopped its actors, so the names are free again.
    let cluster = tokio::time::timeout(WAIT, async {
        loop {
            match Cluster::start_member(&system, &remote, good.clone()) {
                Err(ClusterError::Spawn(_)) => tokio::task::yield_now().await,
                other => break other.expect("a second start works"),
            }
        }
    })
    .await
    .expect("the failed start's actors stop");
    let me = cluster.self_member().id.clone();
    assert!(
        cluster
            .member_list()
            .wait_until(WAIT, |t| t.member(&me).is_some())
            .await
    );
    cluster.shutdown(true).await;
    system.shutdown();
}

/// The blocking calls from a plain thread, from a multi-threaded runtime's worker and from a
/// current-thread runtime all complete; after shutdown a call fails with `ShutDown`.
fn blocking_calls_work(node: &Node) {
    let reply: Response = node
        .cluster
        .request_blocking_as(
            "blocking",
            "hello",
            Echo {
                message: "hi".into(),
                sender: None,
            },
            &CallOptions::default(),
        )
        .unwrap();
    assert!(reply.some_value.starts_with("blocking|hello|"));
    let pid = node
        .cluster
        .get_blocking(&ClusterIdentity::new("blocking", "hello"))
        .unwrap();
    assert!(pid.id().starts_with("partition-activator/blocking$"));
}

#[test]
fn blocking_calls_from_a_plain_thread_and_after_shutdown() {
    let agent = InMemAgent::new();
    let activations = Activations::default();
    let n = member(&agent, &activations);
    blocking_calls_work(&n);
    n.cluster.shutdown_blocking(true);
    let err = n
        .cluster
        .request_blocking(
            "blocking",
            "hello",
            Echo::default(),
            &CallOptions::default(),
        )
        .unwrap_err();
    assert_eq!(err, ClusterError::ShutDown);
    n.system.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_calls_from_a_multi_threaded_runtime() {
    let agent = InMemAgent::new();
    let activations = Activations::default();
    let n = member(&agent, &activations);
    blocking_calls_work(&n);
    shutdown(vec![n]).await;
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_calls_from_a_current_thread_runtime() {
    let agent = InMemAgent::new();
    let activations = Activations::default();
    let n = member(&agent, &activations);
    blocking_calls_work(&n);
    shutdown(vec![n]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_dies_is_dropped_by_the_provider_and_a_restarted_one_rejoins() {
    let (agent, activations, mut nodes) = cluster_of(3).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let identities: Vec<String> = (0..150).map(|i| format!("d-{i}")).collect();
    let before = call_all(&all, &identities).await;

    // Dies without leaving: no deregistration, its remote and actors just stop.
    let dead = nodes.pop().unwrap();
    let (dead_address, dead_id) = (
        dead.cluster.address().to_string(),
        dead.cluster.self_member().id.clone(),
    );
    dead.cluster.shutdown(false).await;
    dead.system.shutdown();
    assert!(
        agent.members().iter().any(|m| m.id == dead_id),
        "still registered"
    );
    // Its registration expires at the provider.
    agent.deregister(&dead_id);
    let rest: Vec<&Node> = nodes.iter().collect();
    wait_for_topology(&rest, &rest).await;
    let after = call_all(&rest, &identities).await;
    for id in &identities {
        assert_eq!(after[id], expected_owner(&rest, id), "{id}");
        if before[id] != dead_address {
            assert_eq!(after[id], before[id], "{id}: grains of live members stay");
        }
    }

    // Restarted: a new process is a new member (new system id) and takes its share again.
    let mut stops = terminated_events(&nodes[0]);
    nodes.push(member(&agent, &activations));
    let three: Vec<&Node> = nodes.iter().collect();
    wait_for_topology(&three, &three).await;
    let newcomer = nodes[2].cluster.address().to_string();
    // The activations that moved to it stop first (each stop is broadcast to every member).
    let mut moving: std::collections::HashSet<String> = identities
        .iter()
        .filter(|i| expected_owner(&three, i) == newcomer)
        .cloned()
        .collect();
    while !moving.is_empty() {
        let t = tokio::time::timeout(WAIT, stops.recv())
            .await
            .expect("moved activations stop")
            .expect("open");
        // Late stops of the dead member's grains may come in too; count only the moved ones.
        let stopped = t.cluster_identity.expect("identity").identity;
        let on_live = t.pid.is_some_and(|p| p.address != dead_address);
        if on_live {
            moving.remove(&stopped);
        }
    }
    let again = call_all(&three, &identities).await;
    let mut hosted = 0;
    for id in &identities {
        assert_eq!(again[id], expected_owner(&three, id), "{id}");
        hosted += usize::from(again[id] == newcomer);
    }
    assert!(hosted > 0, "the restarted member hosts grains again");
    shutdown(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_pids_follow_the_owner_when_the_topology_changes() {
    let agent = InMemAgent::new();
    let activations = Activations::default();
    let n = member(&agent, &activations);
    wait_for_topology(&[&n], &[&n]).await;
    let me = n.cluster.self_member().clone();
    let identities: Vec<String> = (0..100).map(|i| format!("f-{i}")).collect();
    let ci = |id: &str| ClusterIdentity::new(id, "hello");
    for id in &identities {
        n.cluster.pid_cache().set(
            ci(id),
            Pid::new(me.address(), format!("partition-activator/{id}$1")),
        );
    }
    // A member joins (registered by hand: it never answers, nothing is sent to it here).
    let other = Member::new("127.0.0.1", 1, "other-member", ["hello"]);
    agent.register(other.clone());
    assert!(
        n.cluster
            .member_list()
            .wait_until(WAIT, |t| t.len() == 2)
            .await
    );
    let both = [me.clone(), other.clone()];
    let mut kept = 0;
    for id in &identities {
        let owner = owner_of(&both, "hello", id).unwrap().address();
        let cached = n.cluster.pid_cache().get(&ci(id));
        if owner == me.address() {
            assert!(cached.is_some(), "{id}: still ours, still cached");
            kept += 1;
        } else {
            assert!(
                cached.is_none(),
                "{id}: moved to the newcomer, evicted at once"
            );
        }
    }
    assert!(kept > 0 && kept < identities.len());
    // It leaves again: its identities come back to us; ours stay cached.
    agent.deregister(&other.id);
    assert!(
        n.cluster
            .member_list()
            .wait_until(WAIT, |t| t.len() == 1)
            .await
    );
    assert_eq!(n.cluster.pid_cache().len(), kept);
    shutdown(vec![n]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_placement_actor_keeps_its_activations_after_an_unknown_termination() {
    // Go's placement actor panics on a Terminated for a PID it does not know and, restarted,
    // loses its whole activation map (`onTerminated` in protoactor-go's
    // `cluster/identitylookup/disthash/placement_actor.go`).
    let agent = InMemAgent::new();
    let activations = Activations::default();
    let n = member(&agent, &activations);
    wait_for_topology(&[&n], &[&n]).await;
    let ci = ClusterIdentity::new("kept", "hello");
    let pid = n.cluster.get(&ci).await.unwrap();
    // The grain records its activation when it handles `Started`, which may come after `get`.
    let started = tokio::time::timeout(WAIT, async {
        while !activations.lock().contains_key("kept") {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    started.await.expect("the grain starts");
    let activator = Pid::new(n.cluster.address(), "partition-activator");
    n.system.root().send(
        &activator,
        Terminated {
            who: Pid::new(n.cluster.address(), "partition-activator/unknown$1"),
            why: TerminatedReason::Stopped,
        },
    );
    let reply = n
        .system
        .root()
        .request_future(
            &activator,
            ActivationRequest {
                cluster_identity: Some(ci.clone()),
                ..Default::default()
            },
            WAIT,
        )
        .await
        .unwrap();
    let resp = reply.downcast_ref::<ActivationResponse>().unwrap();
    assert_eq!(resp.pid.as_ref().map(|p| p.to_pid()), Some(pid));
    assert_eq!(activations.lock()["kept"].len(), 1);
    shutdown(vec![n]).await;
}
