//! A hostile peer against a Rust-only cluster of three members (each its own actor system and
//! remote on a loopback port, test provider). The attacker is a fourth node with a remote of
//! its own but no membership: it writes the forgeries of issue 22 straight onto member `a`'s
//! gRPC stream, with whatever sender PID it likes (so it can claim to be member `b`). Each
//! test checks that the cluster keeps one topology with every live member, that what `a`
//! keeps stays under a stated bound, and that the forgeries are reported.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use protoactor::prelude::*;
use protoactor::{Config, MessageEnvelope};
use protoactor_cluster::gossip::{HEARTBEAT_KEY, LEFT_KEY};
use protoactor_cluster::proto::{GossipKeyValue, GossipMemberState, GossipRequest, GossipState};
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{
    ActivationRequest, ActivationResponse, ActivationTerminated, ClusterError, ClusterIdentity,
    ClusterTopology, GossipSecret, Kind, Member,
};
use protoactor_remote::{Remote, RemoteConfig, RemoteDeliveryError, WireVariant};
use protoactor_testkit::cluster::{Node, NodeBuilder};

/// Generous upper bound for things that must happen (never a timing assertion).
const WAIT: Duration = Duration::from_secs(60);

/// The attacker's node: an actor system with a remote, no cluster.
fn remote_node() -> (ActorSystem, Arc<Remote>) {
    protoactor_testkit::logs::init_test_logs("error");
    let system = ActorSystem::with_config(Config::default().with_worker_threads(2));
    let remote = Remote::start(
        &system,
        RemoteConfig::local().with_wire_variant(WireVariant::Legacy2024),
    )
    .expect("remote starts");
    (system, remote)
}

fn member(agent: &Arc<InMemAgent>) -> Node {
    member_with(agent, None)
}

/// A member, signing its gossip with `secret` if given.
fn member_with(agent: &Arc<InMemAgent>, secret: Option<&GossipSecret>) -> Node {
    protoactor_testkit::logs::init_test_logs("error");
    let hello = Props::from_func(|ctx| {
        if ctx.message_as::<String>().is_some() {
            ctx.respond(String::from("hi"));
        }
    });
    let secret = secret.cloned();
    NodeBuilder::new("hostile")
        .with_system_config(Config::default().with_worker_threads(2))
        .with_remote_config(|| RemoteConfig::local().with_wire_variant(WireVariant::Legacy2024))
        .with_kind(Kind::new("hello", hello))
        .with_cluster_config(move |config| {
            let config = config.with_gossip_interval(Duration::from_millis(100));
            match &secret {
                Some(s) => config.with_gossip_secret(s.clone()),
                None => config,
            }
        })
        .member(TestProvider::new(agent))
}

/// Three members that all list each other, and the attacker's node.
fn cluster() -> (Vec<Node>, ActorSystem, Arc<Remote>) {
    let agent = InMemAgent::new();
    let nodes: Vec<Node> = (0..3).map(|_| member(&agent)).collect();
    assert_whole(&nodes, "the cluster formed");
    let (attacker, remote) = remote_node();
    protoactor_cluster::cluster::register_cluster_types(remote.serialization());
    (nodes, attacker, remote)
}

/// Waits until every member lists all three members, none blocked.
fn assert_whole(nodes: &[Node], what: &str) {
    eventually(what, || {
        nodes.iter().all(|n| {
            n.cluster.member_list().members().len() == nodes.len()
                && n.cluster.member_list().blocked().is_empty()
        })
    });
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    protoactor_testkit::wait::poll_until(what, WAIT, || check().then_some(()));
}

fn shutdown(nodes: Vec<Node>, attacker: ActorSystem, remote: Arc<Remote>) {
    remote.shutdown();
    attacker.shutdown();
    for n in nodes {
        n.cluster.shutdown_blocking(false);
        n.remote.shutdown();
        n.system.shutdown();
    }
}

/// Writes `message` to `target` on the wire, claiming `sender` sent it.
fn forge<M: Message>(attacker: &ActorSystem, target: &Pid, message: M, sender: Option<Pid>) {
    target.send_user_message(attacker, MessageEnvelope::new(message).with_sender(sender));
}

fn value(seq: i64, bytes: usize) -> GossipKeyValue {
    GossipKeyValue {
        sequence_number: seq,
        value: Some(prost_types::Any {
            type_url: "type.googleapis.com/google.protobuf.Empty".into(),
            value: vec![0; bytes],
        }),
        local_timestamp_unix_milliseconds: 0,
        signature: Vec::new(),
    }
}

fn gossip(entries: &[(&str, &str, GossipKeyValue)]) -> GossipRequest {
    let mut state = GossipState::default();
    for (member, key, v) in entries {
        state
            .members
            .entry(member.to_string())
            .or_insert_with(GossipMemberState::default)
            .values
            .insert(key.to_string(), v.clone());
    }
    GossipRequest {
        from_member_id: String::new(),
        state: Some(state),
    }
}

fn seq_on(node: &Node, key: &str, about: &str) -> i64 {
    node.gossiper()
        .get_state(key)
        .get(about)
        .map_or(0, |v| v.sequence_number)
}

#[test]
fn forged_left_and_heartbeats_last_one_round_and_never_split_the_cluster() {
    let (nodes, attacker, remote) = cluster();
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let to_a = Pid::new(a.address(), "gossip");
    let as_b = Some(Pid::new(b.address(), "forged"));
    let (b_id, c_id) = (b.id(), c.id());

    // From the attacker's own address: not a member, dropped whole.
    forge(
        &attacker,
        &to_a,
        gossip(&[(&c_id, LEFT_KEY, value(1 << 40, 0))]),
        Some(Pid::new(remote.address(), "x")),
    );
    eventually("the unknown sender is reported", || {
        a.gossiper().rejections().unknown_sender >= 1
    });

    // Claiming to be b: `left` for c out of reach (2^40), and for b's heartbeat the maximum
    // sequence number: both refused.
    forge(
        &attacker,
        &to_a,
        gossip(&[
            (&c_id, LEFT_KEY, value(1 << 40, 0)),
            (&b_id, HEARTBEAT_KEY, value(i64::MAX, 0)),
        ]),
        as_b.clone(),
    );
    eventually("the implausible numbers are reported", || {
        a.gossiper().rejections().implausible_sequence >= 2
    });
    assert!(seq_on(a, LEFT_KEY, &c_id) < 1 << 40);

    // Within reach: a `left` for c and a heartbeat for b just above their true numbers.
    // a takes them, echoes them to b and c, which overtake them and republish.
    let forged_left = seq_on(a, HEARTBEAT_KEY, &c_id) + 1_000;
    let forged_beat = seq_on(a, HEARTBEAT_KEY, &b_id) + (1 << 31);
    forge(
        &attacker,
        &to_a,
        gossip(&[
            (&c_id, LEFT_KEY, value(forged_left, 0)),
            (&b_id, HEARTBEAT_KEY, value(forged_beat, 0)),
        ]),
        as_b.clone(),
    );
    eventually("c overtook the forged left", || {
        seq_on(a, HEARTBEAT_KEY, &c_id) > forged_left
    });
    eventually("b overtook the forged heartbeat", || {
        seq_on(a, HEARTBEAT_KEY, &b_id) > forged_beat
    });
    assert!(b.gossiper().rejections().own_value_overtaken >= 1);
    assert!(c.gossiper().rejections().own_value_overtaken >= 1);

    // An old `left` (sequence 1) for c: c heartbeats with newer values, ignored.
    forge(
        &attacker,
        &to_a,
        gossip(&[(&c_id, LEFT_KEY, value(1, 0))]),
        as_b.clone(),
    );
    assert_whole(
        &nodes,
        "one topology with all three members after the forgeries",
    );
    // The heartbeats keep flowing everywhere (nobody expires).
    for (observer, of) in [(a, b), (a, c), (b, a), (b, c), (c, a), (c, b)] {
        let seen = seq_on(observer, HEARTBEAT_KEY, &of.id());
        eventually("heartbeats advance", || {
            seq_on(observer, HEARTBEAT_KEY, &of.id()) > seen
        });
    }
    assert_whole(&nodes, "still whole");
    shutdown(nodes, attacker, remote);
}

#[test]
fn a_flood_of_fake_members_and_huge_values_is_dropped_and_memory_stays_bounded() {
    let (nodes, attacker, remote) = cluster();
    let (a, b) = (&nodes[0], &nodes[1]);
    let to_a = Pid::new(a.address(), "gossip");
    let as_b = Some(Pid::new(b.address(), "forged"));
    // 160,000 fake member ids in eight frames of about 2 MB.
    for frame in 0..8 {
        let ids: Vec<String> = (0..20_000)
            .map(|i| format!("fake-member-{frame}-{i:08}"))
            .collect();
        let entries: Vec<(&str, &str, GossipKeyValue)> = ids
            .iter()
            .map(|id| (id.as_str(), HEARTBEAT_KEY, value(1, 16)))
            .collect();
        forge(&attacker, &to_a, gossip(&entries), as_b.clone());
    }
    eventually("the fake members are reported", || {
        a.gossiper().rejections().unknown_member >= 160_000
    });
    // Two values of 2.5 MB about a listed member, each in its own frame.
    let b_id = b.id();
    for key in ["big1", "big2"] {
        forge(
            &attacker,
            &to_a,
            gossip(&[(
                &b_id,
                key,
                value(seq_on(a, HEARTBEAT_KEY, &b_id) + 1, 2_500_000),
            )]),
            as_b.clone(),
        );
    }
    eventually("the huge values are reported", || {
        a.gossiper().rejections().oversized_value >= 2
    });
    // Bound: a keeps the three members' states and well under 1 MiB of others' values.
    let (members, bytes) = a.gossiper().state_size();
    assert_eq!(members, 3);
    assert!(bytes < 1 << 20, "{bytes} bytes kept");
    // Nothing of it reached b or c, and a's gossip still gets through.
    for n in &nodes[1..] {
        let (members, bytes) = n.gossiper().state_size();
        assert_eq!(members, 3);
        assert!(bytes < 1 << 20);
    }
    let seen = seq_on(b, HEARTBEAT_KEY, &a.id());
    eventually("a's heartbeats reach b", || {
        seq_on(b, HEARTBEAT_KEY, &a.id()) > seen + 3
    });
    assert_whole(&nodes, "one topology with all three members");
    shutdown(nodes, attacker, remote);
}

#[test]
fn a_peer_cannot_publish_a_topology_or_other_local_events_on_a_member() {
    let (nodes, attacker, remote) = cluster();
    let a = &nodes[0];
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let r = refused.clone();
    let _ = a
        .system
        .event_stream()
        .subscribe_to::<RemoteDeliveryError, _>(move |e| r.lock().push(e.type_name.clone()));
    let topologies = Arc::new(Mutex::new(Vec::<ClusterTopology>::new()));
    let t = topologies.clone();
    let _ = a
        .system
        .event_stream()
        .subscribe_to::<ClusterTopology, _>(move |e| t.lock().push(e.clone()));
    let terminated = Arc::new(Mutex::new(0));
    let n = terminated.clone();
    let _ = a
        .system
        .event_stream()
        .subscribe_to::<ActivationTerminated, _>(move |_| *n.lock() += 1);

    let fake = ClusterTopology {
        topology_hash: 1,
        members: vec![Member::new("127.0.0.1", 1, "fake", ["hello"])],
        ..Default::default()
    };
    // To the event stream and straight to the placement actor.
    forge(
        &attacker,
        &Pid::new(a.address(), "eventstream"),
        fake.clone(),
        None,
    );
    forge(
        &attacker,
        &Pid::new(a.address(), "partition-activator"),
        fake,
        None,
    );
    // Any other type on the event stream: refused too (a grain identity, say).
    forge(
        &attacker,
        &Pid::new(a.address(), "eventstream"),
        ClusterIdentity::new("x", "hello"),
        None,
    );
    // ActivationTerminated crosses nodes by design: still published.
    forge(
        &attacker,
        &Pid::new(a.address(), "eventstream"),
        ActivationTerminated::default(),
        None,
    );
    eventually("the forgeries are reported", || refused.lock().len() >= 3);
    let mut names: Vec<String> = refused
        .lock()
        .iter()
        .filter(|n| n.starts_with("cluster."))
        .cloned()
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cluster.ClusterIdentity",
            "cluster.ClusterTopology",
            "cluster.ClusterTopology"
        ]
    );
    eventually("ActivationTerminated is published", || {
        *terminated.lock() == 1
    });
    assert!(topologies
        .lock()
        .iter()
        .all(|t| t.members.iter().all(|m| m.id != "fake")));
    assert_whole(&nodes, "one topology with all three members");
    // The grains still work on a (a String reply: an identity a owns).
    let own = (0..)
        .map(|i| format!("g{i}"))
        .find(|id| a.cluster.member_list().owner("hello", id).as_deref() == Some(&a.address()))
        .unwrap();
    let reply: String = a
        .cluster
        .request_blocking_as(&own, "hello", String::from("hi"), &Default::default())
        .expect("a still serves its grains");
    assert_eq!(reply, "hi");
    shutdown(nodes, attacker, remote);
}

#[test]
fn huge_identities_are_refused_before_any_activation() {
    let (nodes, attacker, remote) = cluster();
    let a = &nodes[0];
    let huge = ActivationRequest {
        cluster_identity: Some(ClusterIdentity::new("x".repeat(1 << 20), "hello")),
        ..Default::default()
    };
    for _ in 0..40 {
        let reply = attacker
            .root()
            .request_future(
                &Pid::new(a.address(), "partition-activator"),
                huge.clone(),
                WAIT,
            )
            .result_as::<ActivationResponse>()
            .expect("answered");
        assert!(reply.failed);
    }
    assert!(a.cluster.activation_counts().values().all(|n| *n == 0));
    // A caller gets a clear error at once.
    let err = a
        .cluster
        .request_blocking(
            "y".repeat(1 << 20),
            "hello",
            String::new(),
            &Default::default(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClusterError::TooLong {
                what: "identity",
                ..
            }
        ),
        "{err}"
    );
    shutdown(nodes, attacker, remote);
}

/// Signed gossip: three members with the cluster secret form their cluster and serve grains;
/// the forgeries of the first test, unsigned, are refused and reported (never stored, so
/// nothing needs overtaking); a fourth member with another secret is listed by the provider
/// but never admitted to anyone's topology, and its gossip is reported refused.
#[test]
fn with_a_gossip_secret_forgeries_and_members_without_it_are_refused() {
    let agent = InMemAgent::new();
    let secret = GossipSecret::new(*b"cluster secret: 32 random bytes!").unwrap();
    let nodes: Vec<Node> = (0..3).map(|_| member_with(&agent, Some(&secret))).collect();
    assert_whole(&nodes, "the signed cluster formed");
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (b_id, c_id) = (b.id(), c.id());
    for n in &nodes {
        let own = (0..)
            .map(|i| format!("g{i}"))
            .find(|id| n.cluster.member_list().owner("hello", id).as_deref() == Some(&n.address()))
            .unwrap();
        // Activated from a over the wire (the owner's placement actor answers a), called on
        // its member (a `String` does not cross the wire).
        let pid = a
            .cluster
            .get_blocking(&ClusterIdentity::new(own.as_str(), "hello"))
            .expect("a activates grains on every member of a signed cluster");
        assert_eq!(pid.address(), n.address());
        let reply: String = n
            .cluster
            .request_blocking_as(&own, "hello", String::from("hi"), &Default::default())
            .expect("the grain answers");
        assert_eq!(reply, "hi");
    }

    // The attacker claims to be b and sends values within reach, unsigned and signed with
    // another secret: all refused.
    let (attacker, remote) = remote_node();
    protoactor_cluster::cluster::register_cluster_types(remote.serialization());
    let to_a = Pid::new(a.address(), "gossip");
    let as_b = Some(Pid::new(b.address(), "forged"));
    let before = a.gossiper().rejections().bad_signature;
    let forged_left = seq_on(a, HEARTBEAT_KEY, &c_id) + 1_000;
    let mut wrongly_signed = value(seq_on(a, HEARTBEAT_KEY, &b_id) + 1_000, 0);
    wrongly_signed.signature = vec![7; 32];
    forge(
        &attacker,
        &to_a,
        gossip(&[
            (&c_id, LEFT_KEY, value(forged_left, 0)),
            (&b_id, HEARTBEAT_KEY, wrongly_signed),
        ]),
        as_b,
    );
    eventually("the unsigned forgeries are reported", || {
        a.gossiper().rejections().bad_signature >= before + 2
    });
    assert_eq!(
        seq_on(a, LEFT_KEY, &c_id),
        0,
        "the forged left was never stored"
    );
    assert_eq!(
        c.gossiper().rejections().own_value_overtaken,
        0,
        "nothing to overtake"
    );

    // A member with another secret: listed, never admitted.
    let other = GossipSecret::new(*b"another secret, not the cluster's").unwrap();
    let intruder = member_with(&agent, Some(&other));
    eventually("the provider lists the intruder everywhere", || {
        nodes
            .iter()
            .all(|n| n.cluster.member_list().listed_members().len() == 4)
    });
    let seen = a.gossiper().rejections().bad_signature;
    eventually("the intruder's own gossip is refused", || {
        a.gossiper().rejections().bad_signature >= seen + 3
    });
    assert_whole(&nodes, "the three members stay one cluster of three");
    assert_eq!(
        intruder.cluster.member_list().members().len(),
        1,
        "the intruder admits nobody either"
    );
    // Heartbeats keep flowing between the members.
    for (observer, of) in [(a, b), (b, c), (c, a)] {
        let seen = seq_on(observer, HEARTBEAT_KEY, &of.id());
        eventually("heartbeats advance", || {
            seq_on(observer, HEARTBEAT_KEY, &of.id()) > seen
        });
    }
    assert_whole(&nodes, "still three");
    intruder.cluster.shutdown_blocking(false);
    intruder.remote.shutdown();
    intruder.system.shutdown();
    shutdown(nodes, attacker, remote);
}
