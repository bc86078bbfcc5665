//! Mutual TLS between members (feature `tls`): three Rust members, each with a certificate
//! of the cluster's CA, form a cluster and answer grain calls; nodes without such a
//! certificate (plaintext, server-only TLS, a certificate of another CA) reach nothing on a
//! member while the member keeps serving with its topology unchanged; a member whose
//! certificate comes from another CA exchanges no gossip and no grain call with the others,
//! and, listed by the provider, is never admitted to their topologies (gossip admission, on
//! with mutual TLS), so every grain call is answered by the members that hold certificates.
//! A protoactor-go member (`interop/cmd/gocluster` with `-tls-cert/-tls-key/-tls-ca`, i.e.
//! protoactor-go's `remote.WithServerOptions`/`WithDialOptions` with gRPC TLS credentials)
//! and a Rust member share one mutual-TLS cluster. Certificates are made at test time
//! (`protoactor_testkit::certs`).

use std::sync::Arc;
use std::time::Duration;

use protoactor::prelude::*;
use protoactor::FutureError;
use protoactor_cluster::automanaged::{AutoManagedConfig, AutoManagedProvider};
use protoactor_cluster::gossip::{Gossiper, HEARTBEAT_KEY};
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{CallOptions, Cluster, GossipSecret};
use protoactor_remote::{Remote, RemoteConfig, TlsConfig, WireVariant};
use protoactor_testkit::certs::TestCa;
use protoactor_testkit::cluster::{
    go_member_binary, serialization, AutoManagedPeers, HelloRequest, HelloResponse, MemberProcess,
    Node, NodeBuilder,
};

/// Generous upper bound for things that must happen (never a timing assertion).
const WAIT: Duration = Duration::from_secs(60);

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    protoactor_testkit::wait::poll_until(what, WAIT, || check().then_some(()));
}

/// A remote config as the testkit's default one (Go's 2024 wire variant, the hello
/// messages), with `tls`.
fn remote_config(tls: TlsConfig) -> RemoteConfig {
    RemoteConfig::new("127.0.0.1", 0)
        .with_wire_variant(WireVariant::Legacy2024)
        .with_serialization(serialization())
        .with_retries(1, Duration::from_millis(50))
        .with_tls(tls)
}

/// Members of cluster "mtls" hosting the hello grain, each with a new certificate of `ca`.
fn builder(ca: &Arc<TestCa>) -> NodeBuilder {
    let ca = ca.clone();
    NodeBuilder::new("mtls")
        .with_hello_kinds(&["hello"])
        .with_remote_config(move || {
            let cert = ca.issue("member");
            remote_config(TlsConfig::mutual(cert.cert_pem, cert.key_pem, ca.pem()))
        })
}

/// A node with remoting only (no membership) on `config`.
fn bare_node(config: RemoteConfig) -> (ActorSystem, Arc<Remote>) {
    let system = ActorSystem::new();
    let remote = Remote::start(&system, config).expect("remote starts");
    (system, remote)
}

/// Asks `to`'s `probe` actor from `from`: "pong", or the error (a dead letter when the
/// message could not be delivered).
fn ping(from: &ActorSystem, to: &Node) -> Result<String, FutureError> {
    from.root()
        .request_future(
            &Pid::new(to.cluster.address(), "probe"),
            probe_request(),
            Duration::from_secs(20),
        )
        .result_as::<HelloResponse>()
        .map(|r| r.message)
}

/// The probe's question: a hello request (a type every node here has registered).
fn probe_request() -> HelloRequest {
    HelloRequest {
        name: "probe".into(),
    }
}

fn spawn_probe(node: &Node) {
    let props = Props::from_func(|ctx| {
        if ctx.message_as::<HelloRequest>().is_some() {
            ctx.respond(HelloResponse {
                message: "pong".into(),
                ..Default::default()
            });
        }
    });
    node.system.root().spawn_named(&props, "probe").unwrap();
}

fn heartbeat_seq(node: &Node, about: &str) -> i64 {
    node.system
        .extension::<Gossiper>()
        .expect("a member gossips")
        .get_state(HEARTBEAT_KEY)
        .get(about)
        .map_or(0, |v| v.sequence_number)
}

fn whole(nodes: &[Node]) -> bool {
    let ids: Vec<String> = nodes.iter().map(Node::id).collect();
    nodes.iter().all(|n| {
        let members = n.cluster.member_list().members();
        members.len() == ids.len()
            && ids.iter().all(|id| members.iter().any(|m| &m.id == id))
            && n.cluster.member_list().blocked().is_empty()
    })
}

#[test]
fn members_with_certificates_of_the_cluster_ca_form_a_cluster_and_refuse_everyone_else() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ca = Arc::new(TestCa::new("cluster CA"));
    let other_ca = TestCa::new("another CA");
    let agent = InMemAgent::new();
    let nodes = builder(&ca).members(3, || TestProvider::new(&agent));
    eventually("the three members see each other", || whole(&nodes));
    // Gossip flows over mutual TLS: every member has every other's heartbeat.
    eventually("heartbeats gossiped", || {
        nodes
            .iter()
            .all(|n| nodes.iter().all(|m| heartbeat_seq(n, &m.id()) > 0))
    });
    // Grain calls from every member, to grains on every member.
    for (i, n) in nodes.iter().enumerate() {
        for g in 0..12 {
            let r = rt
                .block_on(n.hello("hello", &format!("g{g}"), &format!("from {i}")))
                .expect("grain call over mutual TLS");
            assert!(r.message.contains(&format!("from {i}")), "{}", r.message);
        }
    }
    // An actor on each member that answers "pong": what reaches a member is observable.
    for n in &nodes {
        spawn_probe(n);
    }
    let a = &nodes[0];

    // A bare node with a certificate of the cluster's CA reaches `a` (the control: the
    // refusals below are the certificates' doing).
    let good = ca.issue("tool");
    let (s, r) = bare_node(remote_config(TlsConfig::mutual(
        good.cert_pem,
        good.key_pem,
        ca.pem(),
    )));
    assert_eq!(ping(&s, a).as_deref(), Ok("pong"));
    r.shutdown();
    s.shutdown();

    // Refused: plaintext, TLS without a client certificate (trusting the cluster's CA),
    // and a certificate of another CA presented to a server it trusts.
    let stranger = other_ca.issue("stranger");
    let server_only = ca.issue("no client certificate");
    let refused = [
        (
            "plaintext",
            RemoteConfig::new("127.0.0.1", 0)
                .with_wire_variant(WireVariant::Legacy2024)
                .with_serialization(serialization())
                .with_retries(1, Duration::from_millis(50)),
        ),
        (
            "server-only TLS",
            remote_config(TlsConfig::new(
                server_only.cert_pem,
                server_only.key_pem,
                ca.pem(),
            )),
        ),
        (
            "another CA's certificate",
            remote_config(TlsConfig::mutual(
                stranger.cert_pem,
                stranger.key_pem,
                ca.pem(),
            )),
        ),
    ];
    for (what, config) in refused {
        let (s, r) = bare_node(config);
        let got = ping(&s, a);
        assert!(
            got.as_ref().is_err_and(FutureError::is_dead_letter),
            "{what}: {got:?}"
        );
        r.shutdown();
        s.shutdown();
    }

    // `a` keeps serving, its topology unchanged.
    assert!(whole(&nodes), "the topology changed");
    for n in &nodes {
        assert_eq!(ping(&n.system, a).as_deref(), Ok("pong"));
    }
    let r = rt.block_on(nodes[1].hello("hello", "after", "b")).unwrap();
    assert!(r.message.contains('b'));

    // A member of another CA: the provider lists it (membership is the provider's), but
    // nothing it sends is accepted and nothing reaches it. Its gossip never arrives while
    // the others' heartbeats keep advancing, so it is never admitted to their topologies:
    // no identity is placed on it.
    let other_ca = Arc::new(other_ca);
    let intruder = builder(&other_ca).member(TestProvider::new(&agent));
    let intruder_id = intruder.id();
    eventually("the provider lists the intruder to every member", || {
        nodes.iter().all(|n| {
            n.cluster
                .member_list()
                .listed_members()
                .iter()
                .any(|m| m.id == intruder_id)
        })
    });
    let b_id = nodes[1].id();
    let start = heartbeat_seq(a, &b_id);
    eventually("b's heartbeat advances three rounds on `a`", || {
        heartbeat_seq(a, &b_id) >= start + 3
    });
    for n in &nodes {
        assert_eq!(
            heartbeat_seq(n, &intruder_id),
            0,
            "the intruder's gossip reached a member"
        );
        assert_eq!(
            heartbeat_seq(&intruder, &n.id()),
            0,
            "a member's gossip reached the intruder"
        );
    }
    assert!(ping(&intruder.system, a).is_err());
    // Listed, never admitted: the three topologies stay the three members, and the
    // intruder's holds only itself (it admitted nobody either).
    assert!(whole(&nodes), "the intruder was admitted");
    let alone = intruder.cluster.member_list().members();
    assert_eq!(alone.len(), 1, "{alone:?}");
    // Every grain call from every member is answered: no identity hashes to the intruder.
    for (i, n) in nodes.iter().enumerate() {
        for g in 0..24 {
            let r = rt
                .block_on(n.cluster.request_as::<HelloResponse, _>(
                    &format!("g{g}"),
                    "hello",
                    probe_request(),
                    &CallOptions::default().with_timeout(Duration::from_secs(10)),
                ))
                .unwrap_or_else(|e| panic!("member {i}, grain g{g}, intruder listed: {e}"));
            assert_ne!(r.address, intruder.cluster.address().to_string());
        }
    }

    rt.block_on(async {
        intruder.stop(false).await;
        for n in nodes {
            n.stop(true).await;
        }
    });
}

/// A member on `provider` built by `builder`, signing its gossip with `secret`.
fn member_with_secret(
    builder: &NodeBuilder,
    provider: TestProvider,
    secret: &GossipSecret,
) -> Node {
    let (system, remote) = builder.start_remote();
    let config = builder.config(provider).with_gossip_secret(secret.clone());
    let cluster = Cluster::start_member(&system, &remote, config).expect("member starts");
    Node {
        system,
        remote,
        cluster,
    }
}

#[test]
fn with_a_gossip_secret_a_member_of_another_ca_is_never_admitted() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ca = Arc::new(TestCa::new("cluster CA"));
    let other_ca = Arc::new(TestCa::new("another CA"));
    let secret = GossipSecret::new(*b"a cluster secret, 32 bytes long!").unwrap();
    let agent = InMemAgent::new();
    let nodes: Vec<Node> = (0..2)
        .map(|_| member_with_secret(&builder(&ca), TestProvider::new(&agent), &secret))
        .collect();
    eventually("the two members admit each other", || whole(&nodes));
    // The intruder even holds the secret: only its certificate is wrong.
    let intruder = member_with_secret(&builder(&other_ca), TestProvider::new(&agent), &secret);
    let intruder_id = intruder.id();
    let (a, b_id) = (&nodes[0], nodes[1].id());
    let start = heartbeat_seq(a, &b_id);
    eventually("b's heartbeat advances three rounds on `a`", || {
        heartbeat_seq(a, &b_id) >= start + 3
    });
    // Listed by the provider, never admitted: nothing it signed can arrive.
    for n in &nodes {
        let members = n.cluster.member_list().members();
        assert_eq!(members.len(), 2, "{:?}", members);
        assert!(members.iter().all(|m| m.id != intruder_id));
    }
    assert_eq!(intruder.cluster.member_list().members().len(), 1);
    // No grain is placed on it: every call from a member is answered.
    for g in 0..12 {
        rt.block_on(a.hello("hello", &format!("g{g}"), "a"))
            .expect("a grain call with the intruder listed");
    }
    rt.block_on(async {
        intruder.stop(false).await;
        for n in nodes {
            n.stop(true).await;
        }
    });
}

#[test]
fn a_go_member_with_a_certificate_of_the_cluster_ca_shares_a_mutual_tls_cluster() {
    if go_member_binary().is_none() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ca = Arc::new(TestCa::new("cluster CA"));
    let dir = std::env::temp_dir().join(format!("protoactor-mtls-go-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = ca.issue("go member").write(&dir, "go");
    let ca_file = dir.join("ca.crt");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (cert, key, ca_file) = (path(&cert), path(&key), path(&ca_file));

    let peers = AutoManagedPeers::new(2);
    let mut go = MemberProcess::go_with_args(
        "go",
        "mtls",
        &peers.provider(0),
        &["hello", "goonly"],
        &["-tls-cert", &cert, "-tls-key", &key, "-tls-ca", &ca_file],
    )
    .unwrap();
    let rust = builder(&ca)
        .with_hello_kinds(&["rustonly"])
        .member(AutoManagedProvider::new(
            AutoManagedConfig::new(peers.ports[1], peers.peers.clone())
                .with_bind_host("127.0.0.1")
                .with_refresh(Duration::from_secs(1)),
        ));
    let rust_id = rust.id();
    let go_id = go.id.clone();
    go.await_members(&[go_id.as_str(), rust_id.as_str()], WAIT);
    // Gossip both ways over mutual TLS.
    go.await_gossip("heartbeat", &[(&rust_id, 1)], WAIT);
    eventually("the Go member's heartbeat reaches the Rust member", || {
        heartbeat_seq(&rust, &go_id) > 0
    });
    // Grain calls both ways.
    let r = go
        .call("rustonly", "r1", "gopher")
        .expect("Go calls a Rust grain");
    assert_eq!(r.address, rust.cluster.address().to_string());
    let r = rt
        .block_on(rust.hello("goonly", "g1", "crab"))
        .expect("Rust calls a Go grain");
    assert_eq!(r.address, go.address);

    go.stop();
    rt.block_on(rust.stop(false));
    std::fs::remove_dir_all(&dir).unwrap();
}
