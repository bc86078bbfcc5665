//! Mutual TLS between members (feature `tls`): three Rust members, each with a certificate
//! of the cluster's CA, form a cluster and answer grain calls; nodes without such a
//! certificate (plaintext, server-only TLS, a certificate of another CA) reach nothing on a
//! member while the member keeps serving with its topology unchanged; a member whose
//! certificate comes from another CA exchanges no gossip and no grain call with the others,
//! and, listed by the provider, is never admitted to their topologies (gossip admission, on
//! with mutual TLS), so every grain call is answered by the members that hold certificates.
//! A protoactor-go member (`interop/cmd/gocluster` with `-tls-cert/-tls-key/-tls-ca`, i.e.
//! protoactor-go's `remote.WithServerOptions`/`WithDialOptions` with gRPC TLS credentials)
//! and a Rust member share one mutual-TLS cluster. With member signatures
//! (`ClusterConfig::with_member_signatures`), three members each on a loopback host of its
//! own (127.0.0.2-4) with a certificate naming only that host: an insider holding a valid
//! certificate of the CA for another host forges gossip about member `b` and sends as `b`,
//! and everything it forged is refused and counted. Certificates are made at test time
//! (`protoactor_testkit::certs`).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use protoactor::prelude::*;
use protoactor::{FutureError, MessageEnvelope};
use protoactor_cluster::automanaged::{AutoManagedConfig, AutoManagedProvider};
use protoactor_cluster::gossip::{
    pack, Gossiper, MemberSignatures, CERT_KEY, HEARTBEAT_KEY, LEFT_KEY,
};
use protoactor_cluster::proto::{
    GossipKeyValue, GossipMemberState, GossipRequest, GossipResponse, GossipState, MemberHeartbeat,
};
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{
    ActivationRequest, ActivationResponse, CallOptions, Cluster, ClusterError, ClusterIdentity,
    GossipSecret,
};
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

/// A member of cluster "bound" on loopback host `host` with a certificate of `ca` naming only
/// that host, on `agent`'s test provider; with member signatures if `signatures`.
fn member_on(
    ca: &Arc<TestCa>,
    host: &'static str,
    agent: &Arc<InMemAgent>,
    signatures: bool,
) -> Node {
    let ca = ca.clone();
    let builder = NodeBuilder::new("bound")
        .with_hello_kinds(&["hello"])
        .with_remote_config(move || {
            let cert = ca.issue_for("member", &[host]);
            RemoteConfig::new(host, 0)
                .with_wire_variant(WireVariant::Legacy2024)
                .with_serialization(serialization())
                .with_retries(1, Duration::from_millis(50))
                .with_tls(TlsConfig::mutual(cert.cert_pem, cert.key_pem, ca.pem()))
        });
    let (system, remote) = builder.start_remote();
    let config = builder.config(TestProvider::new(agent));
    let config = if signatures {
        config.with_member_signatures()
    } else {
        config
    };
    let cluster = Cluster::start_member(&system, &remote, config).expect("member starts");
    Node {
        system,
        remote,
        cluster,
    }
}

fn gossiper(node: &Node) -> Arc<Gossiper> {
    node.system
        .extension::<Gossiper>()
        .expect("a member gossips")
}

/// A gossip request holding `values` filed under `member`.
fn gossip_about(member: &str, values: Vec<(&str, GossipKeyValue)>) -> GossipRequest {
    let mut state = GossipState::default();
    let m = state
        .members
        .entry(member.to_string())
        .or_insert_with(GossipMemberState::default);
    for (key, v) in values {
        m.values.insert(key.to_string(), v);
    }
    GossipRequest {
        from_member_id: String::new(),
        state: Some(state),
    }
}

#[test]
fn with_member_signatures_an_insider_with_a_certificate_for_another_host_cannot_speak_for_a_member()
{
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ca = Arc::new(TestCa::new("cluster CA"));
    let agent = InMemAgent::new();
    let nodes: Vec<Node> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .into_iter()
        .map(|host| member_on(&ca, host, &agent, true))
        .collect();
    eventually("the three members admit each other", || whole(&nodes));
    eventually("heartbeats gossiped", || {
        nodes
            .iter()
            .all(|n| nodes.iter().all(|m| heartbeat_seq(n, &m.id()) > 0))
    });
    let (a, b) = (&nodes[0], &nodes[1]);
    let b_id = b.id();
    // An actor on `a` that answers "pong" and records who asked.
    let askers = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = askers.clone();
    let props = Props::from_func(move |ctx| {
        if ctx.message_as::<HelloRequest>().is_some() {
            seen.lock().push(
                ctx.sender()
                    .map(|p| p.address().to_string())
                    .unwrap_or_default(),
            );
            ctx.respond(HelloResponse {
                message: "pong".into(),
                ..Default::default()
            });
        }
    });
    a.system.root().spawn_named(&props, "probe").unwrap();

    // The insider: listed by the provider, a valid certificate of the CA for 127.0.0.5,
    // signing nothing (so never admitted), and the signing key of that certificate.
    let insider = member_on(&ca, "127.0.0.5", &agent, false);
    let insider_id = insider.id();
    let insider_tls = insider.remote.tls().unwrap().clone();
    let forger = MemberSignatures::new(&insider_tls, Arc::new(|_: &str| None)).unwrap();
    eventually("the provider lists the insider to `a`", || {
        a.cluster.member_list().is_listed(&insider_id)
    });
    // The control: the insider reaches `a` as itself.
    assert_eq!(ping(&insider.system, a).as_deref(), Ok("pong"));

    let a_gossip = gossiper(a).pid().clone();
    let ask_a = |request: GossipRequest| {
        insider
            .system
            .root()
            .request_future(&a_gossip, request, Duration::from_secs(20))
            .result_as::<GossipResponse>()
            .expect("`a` answers the insider's gossip (it is listed)")
    };
    let held = seq_on_a(a, HEARTBEAT_KEY, &b_id);
    // Plausible sequence numbers (within the step limit): without member signatures, `a`
    // would take them.
    let signed = |key: &str, seq: i64, value: prost_types::Any| {
        let mut v = GossipKeyValue {
            sequence_number: seq,
            value: Some(value),
            ..Default::default()
        };
        forger.sign(&b_id, key, &mut v);
        v
    };
    let forged_beat = || signed(HEARTBEAT_KEY, held + 50, pack(&MemberHeartbeat::default()));
    let empty = prost_types::Any {
        type_url: "type.googleapis.com/google.protobuf.Empty".into(),
        value: Vec::new(),
    };
    let forged_left = || signed(LEFT_KEY, held + 60, empty.clone());
    let before = gossiper(a).rejections();

    // 1. The insider's certificate filed as b's, with a `left` and a heartbeat for b signed
    //    with its key: the certificate does not name b's host.
    let mut cert = GossipKeyValue {
        sequence_number: held + 40,
        value: Some(prost_types::Any {
            type_url: protoactor_cluster::gossip::certs::CERT_TYPE_URL.into(),
            value: forged_cert_der(&insider_tls),
        }),
        ..Default::default()
    };
    forger.sign(&b_id, CERT_KEY, &mut cert);
    ask_a(gossip_about(
        &b_id,
        vec![
            (CERT_KEY, cert),
            (LEFT_KEY, forged_left()),
            (HEARTBEAT_KEY, forged_beat()),
        ],
    ));
    let after = gossiper(a).rejections();
    assert_eq!(
        after.bad_certificate,
        before.bad_certificate + 1,
        "{after:?}"
    );
    assert!(after.bad_signature >= before.bad_signature + 3, "{after:?}");
    // 2. The same values without a certificate: checked with b's own, and refused.
    let before = after;
    ask_a(gossip_about(
        &b_id,
        vec![(LEFT_KEY, forged_left()), (HEARTBEAT_KEY, forged_beat())],
    ));
    let after = gossiper(a).rejections();
    assert!(after.bad_signature >= before.bad_signature + 2, "{after:?}");
    assert!(
        !gossiper(a).get_state(LEFT_KEY).contains_key(&b_id),
        "a forged `left` for b was taken"
    );
    assert!(
        seq_on_a(a, HEARTBEAT_KEY, &b_id) < held + 50,
        "a forged heartbeat for b was taken"
    );
    assert!(
        seq_on_a(a, CERT_KEY, &b_id) < held + 40,
        "the insider's certificate was taken as b's"
    );

    // 3. Sending as b (its address as the sender): refused by peer address binding, both
    //    gossip and a call to the probe; the insider's own call still gets through after.
    let refused = a.remote.refused_senders();
    let as_b = Some(Pid::new(b.cluster.address(), "future$forged"));
    a_gossip.send_user_message(
        &insider.system,
        MessageEnvelope::new(gossip_about(&b_id, vec![(LEFT_KEY, forged_left())]))
            .with_sender(as_b.clone()),
    );
    Pid::new(a.cluster.address(), "probe").send_user_message(
        &insider.system,
        MessageEnvelope::new(probe_request()).with_sender(as_b.clone()),
    );
    // An activation of a grain `a` owns, requested as b.
    let owned_by_a = |prefix: &str| {
        // `owner` names the owner's address.
        (0..10_000)
            .map(|i| format!("{prefix}{i}"))
            .find(|id| {
                a.cluster.member_list().owner("hello", id).as_deref() == Some(a.cluster.address())
            })
            .expect("`a` owns an identity")
    };
    let activation = |identity: &str| ActivationRequest {
        cluster_identity: Some(ClusterIdentity::new(identity, "hello")),
        topology_hash: a.cluster.member_list().topology_hash(),
        ..Default::default()
    };
    let forged_grain = owned_by_a("forged");
    let activator = Pid::new(a.cluster.address(), "partition-activator");
    activator.send_user_message(
        &insider.system,
        MessageEnvelope::new(activation(&forged_grain)).with_sender(as_b),
    );
    // The insider's own call rides the same connection after the forgeries.
    assert_eq!(ping(&insider.system, a).as_deref(), Ok("pong"));
    assert!(
        a.remote.refused_senders() >= refused + 3,
        "the calls as b were not refused"
    );
    let activated = |identity: &str| {
        a.cluster
            .local_activations(Some("hello"))
            .iter()
            .any(|(ci, _)| ci.identity == identity)
    };
    assert!(
        !activated(&forged_grain),
        "the activation requested as b ran"
    );
    // What member signatures do not prevent: a certified member activates a grain as
    // itself.
    let own_grain = owned_by_a("insider");
    insider
        .system
        .root()
        .request_future(&activator, activation(&own_grain), Duration::from_secs(20))
        .result_as::<ActivationResponse>()
        .expect("the insider activates a grain as itself");
    assert!(activated(&own_grain));
    assert_eq!(
        *askers.lock(),
        vec![insider.cluster.address().to_string(); 2],
        "only the insider's own calls reached the probe"
    );
    // 4. A node whose certificate names 127.0.0.5 advertising b's address: its connection
    //    is refused at its handshake, so not even a message without a sender gets through.
    let liar_cert = ca.issue_for("liar", &["127.0.0.5"]);
    let (liar, liar_remote) = bare_node(
        RemoteConfig::new("127.0.0.5", 0)
            .with_advertised_address(b.cluster.address())
            .with_wire_variant(WireVariant::Legacy2024)
            .with_serialization(serialization())
            .with_retries(1, Duration::from_millis(50))
            .with_tls(TlsConfig::mutual(
                liar_cert.cert_pem,
                liar_cert.key_pem,
                ca.pem(),
            )),
    );
    let refused = a.remote.refused_senders();
    Pid::new(a.cluster.address(), "probe")
        .send_user_message(&liar, MessageEnvelope::new(probe_request()));
    eventually("the connection claiming b's address is refused", || {
        a.remote.refused_senders() > refused
    });
    liar_remote.shutdown();
    liar.shutdown();
    assert_eq!(
        askers.lock().len(),
        2,
        "the liar's message reached the probe"
    );

    // b keeps heartbeating, nobody takes a `left` for it, the topology stays the three
    // members (the insider, unsigned, is never admitted), and grain calls are answered.
    let start = seq_on_a(a, HEARTBEAT_KEY, &b_id);
    eventually("b's heartbeat advances three rounds on `a`", || {
        seq_on_a(a, HEARTBEAT_KEY, &b_id) >= start + 3
    });
    assert!(whole(&nodes), "the topology changed");
    for n in &nodes {
        assert!(!gossiper(n).get_state(LEFT_KEY).contains_key(&b_id));
    }
    for g in 0..12 {
        let r = rt
            .block_on(a.hello("hello", &format!("g{g}"), "a"))
            .expect("a grain call with the insider listed");
        assert_ne!(r.address, insider.cluster.address().to_string());
    }
    rt.block_on(async {
        insider.stop(false).await;
        for n in nodes {
            n.stop(true).await;
        }
    });
}

/// The certificate (DER) of `tls`, as the insider would publish it.
fn forged_cert_der(tls: &TlsConfig) -> Vec<u8> {
    protoactor_remote::certs::CertSigner::new(tls)
        .unwrap()
        .certificate()
        .to_vec()
}

fn seq_on_a(a: &Node, key: &str, about: &str) -> i64 {
    gossiper(a)
        .get_state(key)
        .get(about)
        .map_or(0, |v| v.sequence_number)
}

#[test]
fn member_signatures_need_mutual_tls_and_no_gossip_secret() {
    let ca = Arc::new(TestCa::new("cluster CA"));
    let agent = InMemAgent::new();
    let plain = NodeBuilder::new("bound");
    let (system, remote) = plain.start_remote();
    let got = Cluster::start_member(
        &system,
        &remote,
        plain
            .config(TestProvider::new(&agent))
            .with_member_signatures(),
    );
    assert!(
        matches!(got, Err(ClusterError::MemberSignatures(_))),
        "{:?}",
        got.as_ref().err()
    );
    assert!(!remote.binds_peer_addresses());
    remote.shutdown();
    system.shutdown();

    let tls = builder(&ca);
    let (system, remote) = tls.start_remote();
    let secret = GossipSecret::new(*b"a cluster secret, 32 bytes long!").unwrap();
    let got = Cluster::start_member(
        &system,
        &remote,
        tls.config(TestProvider::new(&agent))
            .with_member_signatures()
            .with_gossip_secret(secret),
    );
    assert!(
        matches!(got, Err(ClusterError::MemberSignatures(_))),
        "{:?}",
        got.as_ref().err()
    );
    remote.shutdown();
    system.shutdown();
}
