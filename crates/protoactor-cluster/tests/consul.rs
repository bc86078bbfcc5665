//! The Consul provider against a Consul-compatible test agent (tests/consul_agent: the four
//! endpoints protoactor-go's provider uses, with Consul's documented semantics). No Consul
//! server runs here, so this checks the provider against Consul's documented API, not a live
//! Consul.

mod consul_agent;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use consul_agent::ConsulAgent;
use protoactor_cluster::consul::{ConsulConfig, ConsulProvider};
use protoactor_testkit::cluster::{
    assert_same_owners, go_call_after_a_leave, go_member_binary, HelloResponse, MemberProcess,
    Node, NodeBuilder, Provider,
};

const HELLO: &str = "hello";
/// Generous bound for what must happen (never a timing assertion).
const WAIT: Duration = Duration::from_secs(30);

/// A member of `cluster` on the agent's consul, hosting the hello grain.
fn start_node(cluster: &str, config: ConsulConfig) -> Node {
    NodeBuilder::new(cluster)
        .with_hello_kinds(&[HELLO])
        .member(ConsulProvider::new(config))
}

async fn hello(node: &Node, identity: &str) -> HelloResponse {
    (node.hello(HELLO, identity, "consul").await).unwrap_or_else(|e| panic!("call {identity}: {e}"))
}

/// A PUT to the agent; panics unless it answers 200.
async fn put(addr: &str, path: &str, body: &'static str) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut s, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let r = s
        .send_request(
            hyper::Request::put(path)
                .header("host", "x")
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    body.as_bytes(),
                )))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "PUT {path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_agent_holds_blocking_queries_and_expires_ttls() {
    let agent = ConsulAgent::start().await;
    let addr = agent.address();
    let get = |path: String| {
        let addr = addr.clone();
        async move {
            let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let (mut s, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            let r = s
                .send_request(
                    hyper::Request::get(path)
                        .header("host", "x")
                        .body(http_body_util::Empty::<bytes::Bytes>::new())
                        .unwrap(),
                )
                .await
                .unwrap();
            r.headers()["X-Consul-Index"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        }
    };
    let index = get("/v1/health/service/x".into()).await;
    assert!(index >= 1);
    // Same index: held for the wait, then answered with the same index.
    let t = Instant::now();
    assert_eq!(
        get(format!("/v1/health/service/x?index={index}&wait=300ms")).await,
        index
    );
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "not held: {:?}",
        t.elapsed()
    );
    // A registration ends the hold at once with a newer index.
    let held = tokio::spawn(get(format!("/v1/health/service/x?index={index}&wait=30s")));
    let n = start_node("agent-test", ConsulConfig::new(agent.address()));
    let t = Instant::now();
    let newer = held.await.unwrap();
    assert!(newer > index && t.elapsed() < Duration::from_secs(10));
    // The check starts critical, passes after the first update, and goes critical when the
    // updates stop (non-graceful shutdown: no deregistration).
    let id = n.system.id().to_string();
    let deadline = Instant::now() + WAIT;
    while agent.services().get(&id).map(|s| s.status.clone()) != Some("passing".into()) {
        assert!(
            Instant::now() < deadline,
            "never passing: {:?}",
            agent.services()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    n.stop(false).await;
    let deadline = Instant::now() + WAIT;
    while agent.services()[&id].status != "critical" {
        assert!(Instant::now() < deadline, "never critical");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_converge_through_the_agent_with_gos_registration() {
    let agent = ConsulAgent::start().await;
    let config = ConsulConfig::new(agent.address());
    let nodes: Vec<Node> = (0..3)
        .map(|_| start_node("consul-3", config.clone()))
        .collect();
    let ids: Vec<String> = nodes.iter().map(Node::id).collect();
    for n in &nodes {
        assert!(
            n.await_ids(&ids, true, WAIT).await,
            "{}: {:?}",
            n.id(),
            n.cluster.member_list().members()
        );
    }
    // Member id = the actor system id, as Go's consul provider.
    assert_eq!(nodes[0].id(), nodes[0].system.id());

    // What reached the agent is Go's registration body.
    let me = nodes[0].cluster.self_member();
    let body = agent
        .registrations()
        .into_iter()
        .find(|r| r["ID"] == me.id.as_str())
        .expect("registered");
    assert_eq!(
        body,
        serde_json::json!({
            "ID": me.id, "Name": "consul-3", "Tags": ["hello"], "Port": me.port,
            "Address": "127.0.0.1", "Meta": {"id": me.id},
            "Check": {"TTL": "3s", "DeregisterCriticalServiceAfter": "1m0s"},
            "Checks": null
        })
    );

    // Grain calls spread over the three and agree from every member.
    let mut at = BTreeSet::new();
    for i in 0..60 {
        let id = format!("g-{i}");
        let a = hello(&nodes[0], &id).await;
        let b = hello(&nodes[2], &id).await;
        assert_eq!(a.address, b.address, "{id}: members disagree");
        at.insert(a.address);
    }
    assert_eq!(at.len(), 3, "60 identities all on {at:?}");

    // A client follows the members without registering and reaches the same activations.
    let client = NodeBuilder::new("consul-3").client(ConsulProvider::new(config.clone()));
    assert!(client.await_ids(&ids, true, WAIT).await);
    for i in 0..10 {
        let id = format!("g-{i}");
        assert_eq!(
            hello(&client, &id).await.address,
            hello(&nodes[1], &id).await.address
        );
    }
    assert_eq!(agent.services().len(), 3, "the client registered");
    client.stop(true).await;
    for n in nodes {
        n.stop(true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_ttl_lapses_leaves_and_a_graceful_one_leaves_at_once() {
    let agent = ConsulAgent::start().await;
    let config = ConsulConfig::new(agent.address());
    let n1 = start_node("consul-leave", config.clone());
    let n2 = start_node("consul-leave", config.clone());
    let n3 = start_node("consul-leave", config.clone());
    let ids = vec![n1.id(), n2.id(), n3.id()];
    for n in [&n1, &n2, &n3] {
        assert!(n.await_ids(&ids, true, WAIT).await);
    }

    // n3's TTL updates stop (shut down without deregistering): its check goes critical after
    // the TTL, and the others drop it while it is still registered.
    let n3_id = n3.id();
    n3.stop(false).await;
    assert!(
        n1.await_ids(std::slice::from_ref(&n3_id), false, WAIT)
            .await
    );
    assert!(
        n2.await_ids(std::slice::from_ref(&n3_id), false, WAIT)
            .await
    );
    let s = agent.services();
    assert_eq!(s[&n3_id].status, "critical", "left without a lapsed TTL");
    // Its check passes again (as after a pause): it is a member again, not blocked (Go
    // blocks it forever).
    put(
        &agent.address(),
        &format!("/v1/agent/check/update/service:{n3_id}"),
        r#"{"Status":"passing","Output":""}"#,
    )
    .await;
    assert!(n1.await_ids(std::slice::from_ref(&n3_id), true, WAIT).await);
    // And lapses again (nobody updates it any more).
    assert!(
        n1.await_ids(std::slice::from_ref(&n3_id), false, WAIT)
            .await
    );

    // Grains now live on n1 and n2 only.
    let alive: BTreeSet<String> = [
        n1.cluster.address().to_string(),
        n2.cluster.address().to_string(),
    ]
    .into();
    for i in 0..20 {
        let r = hello(&n2, &format!("after-{i}")).await;
        assert!(alive.contains(&r.address), "answered from {}", r.address);
    }

    // n2 leaves gracefully: deregistered, and n1 sees it go before any TTL could lapse.
    let n2_id = n2.id();
    let t = Instant::now();
    n2.stop(true).await;
    assert!(!agent.services().contains_key(&n2_id), "not deregistered");
    assert!(n1.await_ids(&[n2_id], false, WAIT).await);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "graceful leave took {:?}",
        t.elapsed()
    );
    let r = hello(&n1, "solo").await;
    assert_eq!(r.address, n1.cluster.address());
    n1.stop(true).await;
}

protoactor_testkit::rust_member_child_test!();

#[test]
fn go_and_rust_members_share_one_consul_agent() {
    if go_member_binary().is_none() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let agent = rt.block_on(ConsulAgent::start());
    let cluster = "consul-mixed";
    let topology = Duration::from_secs(60);
    let provider = Provider::Consul {
        agent: agent.address(),
    };
    let mut go = MemberProcess::go("go", cluster, &provider, &[HELLO, "goonly"]).unwrap();
    let mut rust = MemberProcess::rust("rust", cluster, &provider, &[HELLO, "rustonly"]);
    // Member ids are the system ids on both sides.
    let ids = [go.id.clone(), rust.id.clone()];
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let seen_by_go = go.await_members(&ids, topology);
    rust.await_members(&ids, topology);
    let rust_in_go = seen_by_go.iter().find(|m| m.id == rust.id).unwrap();
    assert_eq!(rust_in_go.address, rust.address);
    assert_eq!(rust_in_go.kinds, [HELLO, "rustonly"]);

    // Both registrations have the same shape (the Go one is the reference).
    let regs = agent.registrations();
    let keys = |id: &str| -> Vec<String> {
        let r = regs.iter().find(|r| r["ID"] == id).expect("registered");
        let mut k: Vec<String> = r.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&go.id), keys(&rust.id));
    let go_reg = regs.iter().find(|r| r["ID"] == go.id.as_str()).unwrap();
    let rust_reg = regs.iter().find(|r| r["ID"] == rust.id.as_str()).unwrap();
    assert_eq!(go_reg["Check"], rust_reg["Check"]);
    assert_eq!(go_reg["Name"], rust_reg["Name"]);

    // Grain calls both ways and the same owners.
    let r = go
        .call("rustonly", "r1", "gopher")
        .expect("Go calls a Rust grain");
    assert_eq!(r.address, rust.address);
    let r = rust
        .call("goonly", "g1", "crab")
        .expect("Rust calls a Go grain");
    assert_eq!(r.address, go.address);
    let many: Vec<String> = (0..200).map(|i| format!("id-{i}")).collect();
    let owners = go.owners(HELLO, &many);
    assert_same_owners(&mut rust, HELLO, &many, &owners);
    for addr in [&go.address, &rust.address] {
        assert!(
            owners.values().any(|(a, _)| a == addr),
            "{addr} owns none of 200"
        );
    }

    // The Rust member is killed: its TTL lapses and Go drops it.
    let rust_id = rust.id.clone();
    rust.kill();
    go.await_absent(&[&rust_id], topology);
    assert_eq!(agent.services()[&rust_id].status, "critical");
    let r = go_call_after_a_leave(&mut go, HELLO, "after", "x");
    assert_eq!(r.address, go.address);

    // A new Rust member joins; the Go member leaves gracefully (deregisters) and the Rust
    // member drops it.
    let mut rust = MemberProcess::rust("rust2", cluster, &provider, &[HELLO, "rustonly"]);
    let (go_id, rust2_id) = (go.id.clone(), rust.id.clone());
    go.await_members(&[&go_id, &rust2_id], topology);
    rust.await_members(&[&go_id, &rust2_id], topology);
    let status = go.stop();
    assert!(status.success(), "the Go member exited with {status}");
    assert!(
        !agent.services().contains_key(&go_id),
        "Go did not deregister"
    );
    rust.await_absent(&[&go_id], topology);
    drop(agent);
}
