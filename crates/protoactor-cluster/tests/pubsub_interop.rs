//! Cluster pub/sub in a mixed cluster against the real protoactor-go module
//! (`interop/cmd/gopubsub`): Go and Rust publishers, PID and grain subscribers on both sides,
//! topics hosted on a Rust member and on a Go member, unsubscribing both ways.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use protoactor::prelude::*;
use protoactor_cluster::proto::DeliveryStatus;
use protoactor_cluster::pubsub::{
    InMemoryStore, PubSub, PubSubConfig, PubSubError, SubscriptionStore, TOPIC_KIND,
};
use protoactor_cluster::Cluster;
#[path = "../../protoactor-remote/shared/messages.rs"]
mod messages;
use messages::Seq;
use protoactor_testkit::cluster::{automanaged, sink_kind, NodeBuilder};
use protoactor_testkit::ports::free_port;
use protoactor_testkit::process::ChildProcess;
use protoactor_testkit::wait::poll_until;

const WAIT: Duration = Duration::from_secs(60);

/// What the subscribers of both sides saw: (subscriber, n) in arrival order.
type Log = Arc<Mutex<Vec<(String, i64)>>>;

/// The Go member (`READY <address>`, then `OK`/`ERROR` a command; `GOT <subscriber> <n>`
/// lines go to the log); killed when dropped.
struct GoMember {
    process: ChildProcess,
}

impl GoMember {
    fn start(auto_port: u16, peers: &str, log: &Log) -> Option<(GoMember, String)> {
        let bin = protoactor_testkit::go::go_program("gopubsub", "Go pub/sub interop test")?;
        let mut cmd = Command::new(bin);
        cmd.args([
            "-name",
            "pubsub-interop",
            "-auto-port",
            &auto_port.to_string(),
        ])
        .args(["-peers", peers]);
        let log = log.clone();
        let mut process = ChildProcess::spawn("gopubsub", cmd, move |line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["GOT", name, n] => {
                    log.lock().push((format!("go:{name}"), n.parse().unwrap()));
                    None
                }
                // Go's logger writes to stdout too: only protocol lines are answers.
                [tag, ..] if ["READY", "OK", "ERROR"].contains(tag) => Some(line.to_string()),
                _ => None,
            }
        });
        let ready = process.next_line("READY", WAIT);
        let address = ready
            .split_whitespace()
            .nth(1)
            .expect("READY address")
            .to_string();
        Some((GoMember { process }, address))
    }

    /// Runs one command and asserts it answered OK.
    fn ok(&mut self, cmd: &str) {
        self.process.send_line(cmd);
        let a = self.process.next_line(cmd, WAIT);
        assert_eq!(a, "OK", "go: {cmd}");
    }
}

fn rust_member(auto_port: u16, peers: &str, log: &Log) -> (ActorSystem, Cluster) {
    rust_member_with(auto_port, peers, log, PubSubConfig::default())
}

fn rust_member_with(
    auto_port: u16,
    peers: &str,
    log: &Log,
    pubsub: PubSubConfig,
) -> (ActorSystem, Cluster) {
    let log = log.clone();
    let node = NodeBuilder::new("pubsub-interop")
        .with_types(|s| s.register::<Seq>())
        .with_kind(sink_kind("listener", move |me, s: &Seq| {
            log.lock().push((format!("rust:grain:{me}"), s.n))
        }))
        .with_service(move || PubSub::new(pubsub.clone()))
        .member(automanaged(
            auto_port,
            peers.split(','),
            Duration::from_secs(1),
        ));
    (node.system, node.cluster)
}

fn got(log: &Log, name: &str) -> Vec<i64> {
    log.lock()
        .iter()
        .filter(|(s, _)| s == name)
        .map(|(_, n)| *n)
        .collect()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    poll_until(what, WAIT, || cond().then_some(()));
}

/// The first name `<prefix><i>` whose owner for `kind` is `address`.
fn owned_by(cluster: &Cluster, kind: &str, prefix: &str, address: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|t| cluster.member_list().owner(kind, t).as_deref() == Some(address))
        .unwrap()
}

#[test]
fn go_and_rust_publish_to_each_other_s_pid_and_grain_subscribers_on_topics_hosted_by_either() {
    let log = Log::default();
    let (go_port, rust_port) = (free_port(), free_port());
    let peers = format!("127.0.0.1:{go_port},127.0.0.1:{rust_port}");
    let (system, rust) = rust_member(rust_port, &peers, &log);
    let Some((mut go, go_address)) = GoMember::start(go_port, &peers, &log) else {
        return;
    };
    go.ok("await 2");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ok = rt.block_on(
        rust.member_list()
            .wait_until(WAIT, |t| t.members().count() == 2),
    );
    assert!(ok, "the Rust member never saw the Go member");
    let rust_address = rust.address().to_string();
    // Both members advertise prototopic: topics land on either.
    let on_rust = owned_by(&rust, TOPIC_KIND, "rt", &rust_address);
    let on_go = owned_by(&rust, TOPIC_KIND, "gt", &go_address);
    let rust_grain = owned_by(&rust, "listener", "rg", &rust_address);
    let go_grain = owned_by(&rust, "listener", "gg", &go_address);

    let mut next = 0i64;
    for topic in [&on_rust, &on_go] {
        let l = log.clone();
        let rp_name = format!("rust:pid:{topic}");
        let rust_pid = system.root().spawn(&Props::from_func(move |ctx| {
            if let Some(s) = ctx.message_as::<Seq>() {
                l.lock().push((rp_name.clone(), s.n));
            }
        }));
        go.ok(&format!("subpid {topic} pid{topic}"));
        go.ok(&format!("subid {topic} {go_grain}"));
        rt.block_on(rust.subscribe_pid(topic, &rust_pid)).unwrap();
        rt.block_on(rust.subscribe_identity(topic, &rust_grain, "listener"))
            .unwrap();
        let subscribers = [
            format!("go:pid{topic}"),
            format!("go:grain:{go_grain}"),
            format!("rust:pid:{topic}"),
            format!("rust:grain:{rust_grain}"),
        ];
        let before: Vec<Vec<i64>> = subscribers.iter().map(|s| got(&log, s)).collect();
        // Go publishes, then Rust publishes: every subscriber gets both runs, in order.
        go.ok(&format!("pub {topic} {} {}", next, next + 20));
        let publisher = rust.publisher();
        for n in next + 20..next + 40 {
            rt.block_on(publisher.publish(
                topic,
                Seq {
                    n,
                    tag: String::new(),
                },
            ))
            .unwrap();
        }
        let expected: Vec<i64> = (next..next + 40).collect();
        for (s, b) in subscribers.iter().zip(before) {
            wait_for(s, || got(&log, s).len() >= b.len() + 40);
            assert_eq!(
                got(&log, s)[b.len()..],
                expected[..],
                "{s} on topic {topic}"
            );
        }
        next += 40;
        // Unsubscribe both ways: the Go PID (by Go) and the Rust PID (by Rust).
        go.ok(&format!("unsubpid {topic} pid{topic}"));
        rt.block_on(rust.unsubscribe_pid(topic, &rust_pid)).unwrap();
        rt.block_on(publisher.publish(
            topic,
            Seq {
                n: next,
                tag: String::new(),
            },
        ))
        .unwrap();
        for s in [&subscribers[1], &subscribers[3]] {
            wait_for(s, || got(&log, s).last() == Some(&next));
        }
        assert_ne!(
            got(&log, &subscribers[0]).last(),
            Some(&next),
            "unsubscribed Go PID"
        );
        assert_ne!(
            got(&log, &subscribers[2]).last(),
            Some(&next),
            "unsubscribed Rust PID"
        );
        go.ok(&format!("unsubid {topic} {go_grain}"));
        rt.block_on(rust.unsubscribe_identity(topic, &rust_grain, "listener"))
            .unwrap();
        next += 1;
    }
    drop(go);
    rt.block_on(rust.shutdown(false));
    system.shutdown();
}

#[test]
fn a_killed_go_subscriber_member_s_pids_are_removed_and_publishing_goes_on() {
    let log = Log::default();
    let (go1_port, go2_port, rust_port) = (free_port(), free_port(), free_port());
    let peers = format!("127.0.0.1:{go1_port},127.0.0.1:{go2_port},127.0.0.1:{rust_port}");
    let store = InMemoryStore::new();
    let (system, rust) = rust_member_with(
        rust_port,
        &peers,
        &log,
        PubSubConfig::default().with_store(store.clone()),
    );
    let Some((mut stays, _)) = GoMember::start(go1_port, &peers, &log) else {
        return;
    };
    let Some((mut killed, _)) = GoMember::start(go2_port, &peers, &log) else {
        return;
    };
    stays.ok("await 3");
    killed.ok("await 3");
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert!(rt.block_on(
        rust.member_list()
            .wait_until(WAIT, |t| t.members().count() == 3)
    ));
    let rust_address = rust.address().to_string();
    let topic = owned_by(&rust, TOPIC_KIND, "kt", &rust_address);
    stays.ok(&format!("subpid {topic} stays"));
    killed.ok(&format!("subpid {topic} killed"));
    let publisher = rust.publisher();
    rt.block_on(publisher.publish(
        &topic,
        Seq {
            n: 1,
            tag: String::new(),
        },
    ))
    .unwrap();
    wait_for("both", || {
        got(&log, "go:stays") == [1] && got(&log, "go:killed") == [1]
    });
    // kill -9 the second Go member.
    drop(killed);
    let started = Instant::now();
    rt.block_on(publisher.publish(
        &topic,
        Seq {
            n: 2,
            tag: String::new(),
        },
    ))
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a publish waited on the dead member"
    );
    wait_for("the live subscriber", || got(&log, "go:stays") == [1, 2]);
    // Once the member is gone from the topology, its PID subscriptions go (as in Go).
    wait_for("the dead member's PID to be removed", || {
        store
            .get(&topic)
            .unwrap()
            .is_some_and(|s| s.subscribers.len() == 1)
    });
    rt.block_on(publisher.publish(
        &topic,
        Seq {
            n: 3,
            tag: String::new(),
        },
    ))
    .unwrap();
    wait_for("the live subscriber again", || {
        got(&log, "go:stays") == [1, 2, 3]
    });
    drop(stays);
    rt.block_on(rust.shutdown(false));
    system.shutdown();
}

#[test]
fn an_acknowledged_publish_confirms_rust_subscribers_and_reports_go_ones_as_unacknowledged() {
    let log = Log::default();
    let (go_port, rust_port) = (free_port(), free_port());
    let peers = format!("127.0.0.1:{go_port},127.0.0.1:{rust_port}");
    let config = PubSubConfig::default().with_subscriber_timeout(Duration::from_millis(500));
    let (system, rust) = rust_member_with(rust_port, &peers, &log, config);
    let Some((mut go, go_address)) = GoMember::start(go_port, &peers, &log) else {
        return;
    };
    go.ok("await 2");
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert!(rt.block_on(
        rust.member_list()
            .wait_until(WAIT, |t| t.members().count() == 2)
    ));
    let rust_address = rust.address().to_string();
    let on_rust = owned_by(&rust, TOPIC_KIND, "ar", &rust_address);
    let on_go = owned_by(&rust, TOPIC_KIND, "ag", &go_address);
    let l = log.clone();
    let rust_pid = system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(s) = ctx.message_as::<Seq>() {
            l.lock().push(("rust:pid".into(), s.n));
        }
    }));
    let seq = |n| Seq {
        n,
        tag: String::new(),
    };
    let publisher = rust.publisher();

    // A Rust-hosted topic with a Rust subscriber only: confirmed.
    rt.block_on(rust.subscribe_pid(&on_rust, &rust_pid))
        .unwrap();
    rt.block_on(publisher.publish_acknowledged(&on_rust, seq(1)))
        .unwrap();
    assert_eq!(got(&log, "rust:pid"), [1]);

    // A Go subscriber joins: it gets the message, but Go's delivery actor never
    // acknowledges, so it is reported (and only it).
    go.ok(&format!("subpid {on_rust} gopid"));
    let err = rt
        .block_on(publisher.publish_acknowledged(&on_rust, seq(2)))
        .unwrap_err();
    match &err {
        PubSubError::Undelivered { failed, .. } => {
            assert_eq!(failed.len(), 1, "{err}");
            assert_eq!(failed[0].status, DeliveryStatus::Timeout, "{err}");
            assert!(failed[0].reason.contains("protoactor-go"), "{err}");
        }
        other => panic!("expected Undelivered, got {other}"),
    }
    assert_eq!(got(&log, "rust:pid"), [1, 2]);
    wait_for("the Go subscriber", || got(&log, "go:gopid") == [2]);

    // A Go-hosted topic answers before delivering: published, not acknowledged.
    rt.block_on(rust.subscribe_pid(&on_go, &rust_pid)).unwrap();
    let err = rt
        .block_on(publisher.publish_acknowledged(&on_go, seq(3)))
        .unwrap_err();
    assert!(
        matches!(&err, PubSubError::NotAcknowledged { topic } if topic == &on_go),
        "{err}"
    );
    wait_for("delivery through the Go topic", || {
        got(&log, "rust:pid") == [1, 2, 3]
    });
    drop(go);
    rt.block_on(rust.shutdown(false));
    system.shutdown();
}
