//! Cluster pub/sub between Rust members in one process (each member its own actor system and
//! remote on a loopback port): Go's dialect end to end, and what it does better than Go.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use protoactor::prelude::*;
use protoactor::{BoxedMessage, Config, DeadLetterEvent, Subscription};
use protoactor_cluster::proto::{
    subscriber_identity::Identity, DeliverBatchRequestTransport, DeliveryStatus,
    PubSubBatchTransport, PubSubEnvelope, Subscribers,
};
use protoactor_cluster::pubsub::{
    InMemoryStore, ProducerConfig, PubSub, PubSubConfig, PubSubError, StoreFailure,
    SubscriptionStore, DELIVERY_NAME, TOPIC_KIND,
};
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{Cluster, ClusterConfig, DistHashIdentityLookup, GrainContext, Kind};
#[path = "../../protoactor-remote/shared/messages.rs"]
mod messages;
use messages::Seq;
use protoactor_remote::{Remote, RemoteConfig, WireVariant};
use tokio::sync::mpsc;

/// Generous upper bound for things that must happen (never a timing assertion).
const WAIT: Duration = Duration::from_secs(30);

/// What the subscribers saw: (subscriber name, message number), in arrival order.
type Log = Arc<Mutex<Vec<(String, i64)>>>;

struct Node {
    system: ActorSystem,
    cluster: Cluster,
}

/// A grain of kind `listener` that logs every `Seq` as `grain:<identity>`.
fn listener_kind(log: &Log) -> Kind {
    let log = log.clone();
    Kind::new(
        "listener",
        Props::from_func(move |ctx| {
            if let Some(s) = ctx.message_as::<Seq>() {
                let me = ctx.cluster_identity().expect("identity").identity;
                log.lock().push((format!("grain:{me}"), s.n));
            }
        }),
    )
}

fn member(agent: &Arc<InMemAgent>, log: &Log, config: PubSubConfig) -> Node {
    protoactor_testkit::logs::init_test_logs("warn");
    let system = ActorSystem::with_config(Config::default().with_worker_threads(2));
    let remote = Remote::start(
        &system,
        RemoteConfig::local().with_wire_variant(WireVariant::Legacy2024),
    )
    .expect("remote starts");
    remote.serialization().register::<Seq>();
    let config = ClusterConfig::new(
        "pubsub",
        TestProvider::new(agent),
        DistHashIdentityLookup::new(),
    )
    .with_kind(listener_kind(log))
    .with_service(PubSub::new(config));
    let cluster = Cluster::start_member(&system, &remote, config).expect("member starts");
    Node { system, cluster }
}

async fn wait_for_members(nodes: &[&Node]) {
    for n in nodes {
        let ok = n
            .cluster
            .member_list()
            .wait_until(WAIT, |t| t.members().count() == nodes.len())
            .await;
        assert!(
            ok,
            "{} never saw {} members",
            n.cluster.address(),
            nodes.len()
        );
    }
}

async fn shutdown(nodes: Vec<Node>) {
    for n in nodes {
        n.cluster.shutdown(true).await;
        n.system.shutdown();
    }
}

/// An actor that logs every `Seq` under `name`.
fn pid_subscriber(node: &Node, name: &str, log: &Log) -> Pid {
    let (name, log) = (name.to_string(), log.clone());
    node.system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(s) = ctx.message_as::<Seq>() {
            log.lock().push((name.clone(), s.n));
        }
    }))
}

fn seq(n: i64) -> Seq {
    Seq {
        n,
        tag: String::new(),
    }
}

/// The numbers `name` got, in arrival order.
fn got(log: &Log, name: &str) -> Vec<i64> {
    log.lock()
        .iter()
        .filter(|(s, _)| s == name)
        .map(|(_, n)| *n)
        .collect()
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The topic name (`<prefix><i>`) whose owner among the members is `node`.
fn topic_owned_by(node: &Node, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|t| {
            node.cluster.member_list().owner(TOPIC_KIND, t).as_deref()
                == Some(node.cluster.address())
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pid_and_grain_subscribers_get_the_messages_themselves_in_publish_order() {
    let (agent, log) = (InMemAgent::new(), Log::default());
    let a = member(&agent, &log, PubSubConfig::default());
    let b = member(&agent, &log, PubSubConfig::default());
    wait_for_members(&[&a, &b]).await;
    // Both a PID on each member and grains (placed on either member) subscribe.
    let pa = pid_subscriber(&a, "pid-a", &log);
    let pb = pid_subscriber(&b, "pid-b", &log);
    b.cluster.subscribe_pid("news", &pa).await.unwrap();
    a.cluster.subscribe_pid("news", &pb).await.unwrap();
    for g in ["g1", "g2", "g3"] {
        a.cluster
            .subscribe_identity("news", g, "listener")
            .await
            .unwrap();
    }
    // Subscribing twice is idempotent (Go keys subscribers by value).
    a.cluster.subscribe_pid("news", &pb).await.unwrap();

    let publisher = a.cluster.publisher();
    publisher.initialize("news", Duration::ZERO).await.unwrap();
    for n in 0..50 {
        publisher.publish("news", seq(n)).await.unwrap();
    }
    let batch: Vec<BoxedMessage> = (50..100)
        .map(|n| Box::new(seq(n)) as BoxedMessage)
        .collect();
    b.cluster
        .publisher()
        .publish_batch("news", batch)
        .await
        .unwrap();

    let expected: Vec<i64> = (0..100).collect();
    for name in ["pid-a", "pid-b", "grain:g1", "grain:g2", "grain:g3"] {
        wait_for(name, || got(&log, name).len() >= 100).await;
        assert_eq!(
            got(&log, name),
            expected,
            "{name} got the messages in order, once"
        );
    }
    shutdown(vec![a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribed_subscribers_get_nothing_more() {
    let (agent, log) = (InMemAgent::new(), Log::default());
    let a = member(&agent, &log, PubSubConfig::default());
    let b = member(&agent, &log, PubSubConfig::default());
    wait_for_members(&[&a, &b]).await;
    let p = pid_subscriber(&b, "pid", &log);
    b.cluster.subscribe_pid("u", &p).await.unwrap();
    a.cluster
        .subscribe_identity("u", "g", "listener")
        .await
        .unwrap();
    let publisher = a.cluster.publisher();
    publisher.publish("u", seq(1)).await.unwrap();
    wait_for("first", || {
        got(&log, "pid") == [1] && got(&log, "grain:g") == [1]
    })
    .await;
    b.cluster.unsubscribe_pid("u", &p).await.unwrap();
    a.cluster
        .unsubscribe_identity("u", "g", "listener")
        .await
        .unwrap();
    // A control subscriber shows when the next message was delivered.
    let c = pid_subscriber(&b, "control", &log);
    b.cluster.subscribe_pid("u", &c).await.unwrap();
    publisher.publish("u", seq(2)).await.unwrap();
    wait_for("control", || got(&log, "control") == [2]).await;
    assert_eq!(got(&log, "pid"), [1]);
    assert_eq!(got(&log, "grain:g"), [1]);
    shutdown(vec![a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_pid_subscriber_is_removed_after_a_failed_delivery() {
    let (agent, log, store) = (InMemAgent::new(), Log::default(), InMemoryStore::new());
    let config = PubSubConfig::default().with_store(store.clone());
    let a = member(&agent, &log, config.clone());
    let b = member(&agent, &log, config);
    wait_for_members(&[&a, &b]).await;
    let dead = pid_subscriber(&b, "dead", &log);
    let alive = pid_subscriber(&b, "alive", &log);
    a.cluster.subscribe_pid("d", &dead).await.unwrap();
    a.cluster.subscribe_pid("d", &alive).await.unwrap();
    b.system.root().stop_future(&dead).await.unwrap();
    a.cluster.publisher().publish("d", seq(7)).await.unwrap();
    wait_for("alive", || got(&log, "alive") == [7]).await;
    // The delivery actor reports SubscriberNoLongerReachable; the topic drops the PID (Go).
    wait_for("the dead PID to be removed", || {
        store.get("d").unwrap().map(|s| s.subscribers.len()) == Some(1)
    })
    .await;
    shutdown(vec![a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_in_a_store_survive_the_topic_moving_to_another_member() {
    let (agent, log, store) = (InMemAgent::new(), Log::default(), InMemoryStore::new());
    let config = PubSubConfig::default().with_store(store.clone());
    let a = member(&agent, &log, config.clone());
    let b = member(&agent, &log, config);
    wait_for_members(&[&a, &b]).await;
    let topic = topic_owned_by(&a, "t");
    let p = pid_subscriber(&b, "pid", &log);
    b.cluster.subscribe_pid(&topic, &p).await.unwrap();
    b.cluster
        .subscribe_identity(&topic, "g", "listener")
        .await
        .unwrap();
    b.cluster.publisher().publish(&topic, seq(1)).await.unwrap();
    wait_for("first", || got(&log, "pid") == [1]).await;
    // The topic's host leaves: the topic is activated again on b, from the store.
    a.cluster.shutdown(true).await;
    a.system.shutdown();
    wait_for_members(&[&b]).await;
    b.cluster.publisher().publish(&topic, seq(2)).await.unwrap();
    wait_for("after the move", || got(&log, "pid") == [1, 2]).await;
    wait_for("grain after the move", || {
        got(&log, "grain:g").ends_with(&[2])
    })
    .await;
    shutdown(vec![b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_does_not_hold_up_the_next_batches_of_the_others() {
    let (agent, log) = (InMemAgent::new(), Log::default());
    let config = PubSubConfig::default().with_subscriber_timeout(Duration::from_millis(500));
    let a = member(&agent, &log, config);
    wait_for_members(&[&a]).await;
    let slow_log = log.clone();
    let slow = a.system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(s) = ctx.message_as::<Seq>() {
            if s.n == 0 {
                // Far past the subscriber timeout.
                std::thread::sleep(Duration::from_secs(2));
            }
            slow_log.lock().push(("slow".into(), s.n));
        }
    }));
    let fast = pid_subscriber(&a, "fast", &log);
    a.cluster.subscribe_pid("s", &slow).await.unwrap();
    a.cluster.subscribe_pid("s", &fast).await.unwrap();
    let publisher = a.cluster.publisher();
    for n in 0..3 {
        publisher.publish("s", seq(n)).await.unwrap();
    }
    wait_for("everything", || got(&log, "slow").len() == 3).await;
    // The fast subscriber had every batch before the slow one finished the first.
    let order: Vec<(String, i64)> = log.lock().clone();
    let slow_first = order
        .iter()
        .position(|e| e == &("slow".to_string(), 0))
        .unwrap();
    let fast_last = order
        .iter()
        .position(|e| e == &("fast".to_string(), 2))
        .unwrap();
    assert!(fast_last < slow_first, "fast waited for slow: {order:?}");
    shutdown(vec![a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batching_producer_publishes_everything_in_order_with_per_message_results() {
    let (agent, log) = (InMemAgent::new(), Log::default());
    let a = member(&agent, &log, PubSubConfig::default());
    let b = member(&agent, &log, PubSubConfig::default());
    wait_for_members(&[&a, &b]).await;
    let p = pid_subscriber(&b, "pid", &log);
    a.cluster.subscribe_pid("p", &p).await.unwrap();
    let config = ProducerConfig {
        batch_size: 100,
        max_queue: 10_000,
        flush_interval: Duration::from_millis(5),
        ..Default::default()
    };
    let producer = a.cluster.batching_producer("p", config);
    let results: Vec<_> = (0..1000)
        .map(|n| producer.produce(seq(n)).expect("queued"))
        .collect();
    for r in results {
        r.await.expect("published");
    }
    wait_for("all", || got(&log, "pid").len() >= 1000).await;
    assert_eq!(got(&log, "pid"), (0..1000).collect::<Vec<_>>());
    shutdown(vec![a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_producer_queue_and_an_unhostable_topic_are_errors() {
    protoactor_testkit::logs::init_test_logs("warn");
    // A member without pub/sub: no member hosts `prototopic`.
    let agent = InMemAgent::new();
    let system = ActorSystem::new();
    let remote = Remote::start(&system, RemoteConfig::local()).unwrap();
    remote.serialization().register::<Seq>();
    let config = ClusterConfig::new(
        "nopubsub",
        TestProvider::new(&agent),
        DistHashIdentityLookup::new(),
    )
    .with_request_timeout(Duration::from_secs(1));
    let cluster = Cluster::start_member(&system, &remote, config).unwrap();
    let err = cluster.publisher().publish("x", seq(1)).await.unwrap_err();
    assert!(matches!(err, PubSubError::Cluster(_)), "{err}");

    let producer = cluster.batching_producer(
        "x",
        ProducerConfig {
            max_queue: 1,
            ..Default::default()
        },
    );
    // The queue holds one message while the producer's task publishes a batch (which fails:
    // no member hosts the topic), so producing faster than that fills it. The task runs on
    // the other worker and may take messages into its batches while this loop runs, so
    // produce until the queue is full, not a fixed count.
    let mut outcomes = Vec::new();
    for n in 0..1000 {
        match producer.produce(seq(n)) {
            Err(PubSubError::QueueFull) => break,
            other => outcomes.push(other.expect("queued")),
        }
    }
    assert!(
        outcomes.len() < 1000,
        "the queue of one filled while the first batch hangs"
    );
    for o in outcomes {
        assert!(
            o.await.is_err(),
            "a message to an unhostable topic reports an error"
        );
    }
    // An unregistered type fails at once, before any queueing.
    assert!(matches!(
        producer.produce(String::from("no")),
        Err(PubSubError::Encode(_))
    ));
    cluster.shutdown(true).await;
    system.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_an_error_and_the_topic_and_delivery_actor_keep_serving() {
    let (agent, log) = (InMemAgent::new(), Log::default());
    let a = member(&agent, &log, PubSubConfig::default());
    wait_for_members(&[&a]).await;
    let p = pid_subscriber(&a, "pid", &log);
    let (dead, _dead_sub) = dead_letter_topics(&a);
    a.cluster.subscribe_pid("b", &p).await.unwrap();
    // A subscriber whose kind no member hosts: the publish reports the failure, the others
    // still get the message.
    a.cluster
        .subscribe_identity("b", "x", "nokind")
        .await
        .unwrap();
    let publisher = a.cluster.publisher();
    assert_eq!(
        publisher.publish("b", seq(1)).await,
        Err(PubSubError::PublishFailed)
    );
    wait_for("despite the unplaceable subscriber", || {
        got(&log, "pid") == [1]
    })
    .await;
    a.cluster
        .unsubscribe_identity("b", "x", "nokind")
        .await
        .unwrap();
    // A 10 MB message is refused before it is sent, by the publisher and the producer.
    let big = || Seq {
        n: 0,
        tag: "x".repeat(10 << 20),
    };
    let err = publisher.publish("b", big()).await.unwrap_err();
    assert!(
        matches!(err, PubSubError::MessageTooLarge { max, bytes } if max == 4 << 20 && bytes > 10 << 20),
        "{err}"
    );
    let producer = a.cluster.batching_producer("b", ProducerConfig::default());
    assert!(matches!(
        producer.produce(big()),
        Err(PubSubError::MessageTooLarge { .. })
    ));
    // A batch with a type nobody knows, straight to the delivery actor: reported, not fatal.
    let bad = DeliverBatchRequestTransport {
        subscribers: Some(Subscribers {
            subscribers: vec![],
        }),
        batch: Some(PubSubBatchTransport {
            type_names: vec!["nope.Nope".into()],
            envelopes: vec![PubSubEnvelope {
                type_id: 0,
                message_data: vec![1, 2, 3],
                serializer_id: 0,
            }],
            ..Default::default()
        }),
        topic: "b".into(),
        ..Default::default()
    };
    let delivery = Pid::new(a.cluster.address(), DELIVERY_NAME);
    a.system.root().send(&delivery, bad.clone());
    let mut with_sub = bad;
    with_sub.subscribers = Some(Subscribers {
        subscribers: vec![protoactor_cluster::proto::SubscriberIdentity {
            identity: Some(Identity::Pid(protoactor_remote::PidExt::to_proto(&p))),
        }],
    });
    a.system.root().send(&delivery, with_sub.clone());
    // Asked for an acknowledgement, the delivery actor names the failure and why.
    with_sub.acknowledge = true;
    let report = a
        .system
        .root()
        .request_future(&delivery, with_sub, WAIT)
        .await
        .unwrap();
    let report = report
        .downcast_ref::<protoactor_cluster::proto::NotifyAboutFailingSubscribersRequest>()
        .expect("a delivery report");
    assert_eq!(report.invalid_deliveries.len(), 1, "{report:?}");
    assert_eq!(
        report.invalid_deliveries[0].status,
        DeliveryStatus::OtherError as i32
    );
    assert!(
        report.invalid_deliveries[0].reason.contains("nope.Nope"),
        "{report:?}"
    );
    publisher.publish("b", seq(2)).await.unwrap();
    wait_for("after bad input", || got(&log, "pid") == [1, 2]).await;
    // Undeliverable batches went to dead letters with the topic named: the unplaceable
    // subscriber's and the undecodable ones.
    wait_for("dead letters naming the topic", || {
        let d = dead.lock();
        d.iter().filter(|t| t.as_str() == "b").count() >= 3
    })
    .await;
    shutdown(vec![a]).await;
}

/// Records the topic of every pub/sub batch that reaches dead letters on `node`.
fn dead_letter_topics(node: &Node) -> (Arc<Mutex<Vec<String>>>, Subscription) {
    let topics = Arc::new(Mutex::new(Vec::new()));
    let t = topics.clone();
    let sub = node
        .system
        .event_stream()
        .subscribe_to::<DeadLetterEvent, _>(move |e| {
            if let Some(r) = e.message.downcast_ref::<DeliverBatchRequestTransport>() {
                t.lock().push(r.topic.clone());
            }
        });
    (topics, sub)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_host_dying_mid_batch_is_an_error_and_a_retry_reaches_the_topic_elsewhere() {
    let (agent, log, store) = (InMemAgent::new(), Log::default(), InMemoryStore::new());
    let config = PubSubConfig::default()
        .with_store(store.clone())
        .with_subscriber_timeout(Duration::from_secs(3));
    let a = member(&agent, &log, config.clone());
    let b = member(&agent, &log, config);
    wait_for_members(&[&a, &b]).await;
    let topic = topic_owned_by(&a, "mid");
    // Slow on the first message: the topic on A is still waiting for B's acknowledgement
    // when A dies.
    let (entered_tx, mut entered) = mpsc::unbounded_channel();
    let l = log.clone();
    let slow = b.system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(s) = ctx.message_as::<Seq>() {
            if s.n == 0 {
                let _ = entered_tx.send(());
                std::thread::sleep(Duration::from_millis(300));
            }
            l.lock().push(("slow".into(), s.n));
        }
    }));
    b.cluster.subscribe_pid(&topic, &slow).await.unwrap();
    let publisher = b.cluster.publisher();
    let (p, t) = (publisher.clone(), topic.clone());
    let in_flight = tokio::spawn(async move { p.publish_acknowledged(&t, seq(0)).await });
    entered.recv().await.unwrap();
    let a_id = a.cluster.self_member().id.clone();
    a.cluster.shutdown(false).await;
    a.system.shutdown();
    agent.deregister(&a_id);
    // The answer died with the topic's host: a clear error, not a hang (or, when the
    // cluster's retry already reached the topic's new activation, a completed publish).
    if let Err(e) = in_flight.await.unwrap() {
        assert!(matches!(e, PubSubError::Cluster(_)), "{e}");
    }
    // Nothing was dropped on the subscriber's side, and the topic, activated again on B
    // with its subscriber from the store, serves the next publish.
    wait_for_members(&[&b]).await;
    publisher
        .publish_acknowledged(&topic, seq(1))
        .await
        .unwrap();
    let seen = got(&log, "slow");
    assert_eq!(seen.first(), Some(&0), "{seen:?}");
    assert_eq!(seen.last(), Some(&1), "{seen:?}");
    shutdown(vec![b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_subscribes_itself_from_inside() {
    let (agent, log) = (InMemAgent::new(), Log::default());
    let a = member(&agent, &log, PubSubConfig::default());
    wait_for_members(&[&a]).await;
    let (ready_tx, mut ready) = mpsc::unbounded_channel();
    let l = log.clone();
    a.system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message_as::<Started>().is_some() {
            let cluster = ctx.cluster().expect("cluster");
            let me = ctx.self_pid().clone();
            let tx = ready_tx.clone();
            ctx.reenter_after_with_context(cluster.subscribe_pid("inside", &me), move |_, r| {
                let _ = tx.send(r);
            });
        } else if let Some(s) = ctx.message_as::<Seq>() {
            l.lock().push(("inside".into(), s.n));
        }
    }));
    ready.recv().await.unwrap().unwrap();
    a.cluster
        .publisher()
        .publish("inside", seq(5))
        .await
        .unwrap();
    wait_for("inside", || got(&log, "inside") == [5]).await;
    shutdown(vec![a]).await;
}

// ------------------------------------------------------------------ acknowledged publish

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_publish_completes_when_every_subscriber_handled_it() {
    let (agent, log) = (InMemAgent::new(), Log::default());
    let a = member(&agent, &log, PubSubConfig::default());
    let b = member(&agent, &log, PubSubConfig::default());
    wait_for_members(&[&a, &b]).await;
    for (node, name) in [(&a, "pid-a"), (&b, "pid-b")] {
        let pid = pid_subscriber(node, name, &log);
        a.cluster.subscribe_pid("ack", &pid).await.unwrap();
    }
    for g in ["g1", "g2"] {
        a.cluster
            .subscribe_identity("ack", g, "listener")
            .await
            .unwrap();
    }
    let publisher = b.cluster.publisher();
    for n in 0..20 {
        publisher.publish_acknowledged("ack", seq(n)).await.unwrap();
        // No waiting: when the publish returns, every subscriber has handled the message.
        for name in ["pid-a", "pid-b", "grain:g1", "grain:g2"] {
            assert_eq!(got(&log, name), (0..=n).collect::<Vec<_>>(), "{name}");
        }
    }
    let batch: Vec<BoxedMessage> = (20..30).map(|n| Box::new(seq(n)) as BoxedMessage).collect();
    publisher
        .publish_batch_acknowledged("ack", batch)
        .await
        .unwrap();
    assert_eq!(got(&log, "pid-b"), (0..30).collect::<Vec<_>>());
    shutdown(vec![a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_publish_names_the_subscribers_that_failed_and_why() {
    let (agent, log) = (InMemAgent::new(), Log::default());
    let config = PubSubConfig::default().with_subscriber_timeout(Duration::from_millis(500));
    let a = member(&agent, &log, config.clone());
    let b = member(&agent, &log, config);
    wait_for_members(&[&a, &b]).await;
    let ok = pid_subscriber(&b, "ok", &log);
    // Never answers within the subscriber timeout.
    let stuck = b.system.root().spawn(&Props::from_func(|ctx| {
        if ctx.message_as::<Seq>().is_some() {
            std::thread::sleep(Duration::from_secs(2));
        }
    }));
    // Gone before the publish.
    let dead = pid_subscriber(&b, "dead", &log);
    for p in [&ok, &stuck, &dead] {
        a.cluster.subscribe_pid("fail", p).await.unwrap();
    }
    // A grain whose kind no member hosts.
    a.cluster
        .subscribe_identity("fail", "x", "nokind")
        .await
        .unwrap();
    b.system.root().stop_future(&dead).await.unwrap();

    let err = a
        .cluster
        .publisher()
        .publish_acknowledged("fail", seq(1))
        .await
        .unwrap_err();
    let PubSubError::Undelivered { topic, failed } = &err else {
        panic!("expected Undelivered, got {err}");
    };
    assert_eq!(topic, "fail");
    let status_of = |pid: &Pid| {
        failed
            .iter()
            .find(|f| matches!(&f.subscriber.identity, Some(Identity::Pid(p)) if p.id == pid.id()))
            .map(|f| f.status)
    };
    assert_eq!(status_of(&stuck), Some(DeliveryStatus::Timeout), "{err}");
    assert_eq!(
        status_of(&dead),
        Some(DeliveryStatus::SubscriberNoLongerReachable),
        "{err}"
    );
    assert_eq!(
        status_of(&ok),
        None,
        "the live subscriber handled it: {err}"
    );
    assert!(
        failed.iter().any(|f| matches!(&f.subscriber.identity,
            Some(Identity::ClusterIdentity(ci)) if ci.kind == "nokind")
            && f.reason.contains("no member hosts")),
        "{err}"
    );
    // The message names the topic and each failed subscriber's reason.
    let text = err.to_string();
    assert!(
        text.contains("\"fail\"") && text.contains("subscriber timeout"),
        "{text}"
    );
    assert_eq!(got(&log, "ok"), [1]);
    shutdown(vec![a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_answers_is_reported_and_the_topic_keeps_serving() {
    let (agent, log) = (InMemAgent::new(), Log::default());
    let config = PubSubConfig::default().with_subscriber_timeout(Duration::from_millis(300));
    let a = member(&agent, &log, config);
    wait_for_members(&[&a]).await;
    // Takes every message and never lets the Touch behind it be answered in time.
    let silent = a.system.root().spawn(&Props::from_func(|ctx| {
        if ctx.message_as::<Seq>().is_some() {
            std::thread::sleep(Duration::from_secs(1));
        }
    }));
    let fine = pid_subscriber(&a, "fine", &log);
    a.cluster.subscribe_pid("never", &silent).await.unwrap();
    a.cluster.subscribe_pid("never", &fine).await.unwrap();
    let publisher = a.cluster.publisher();
    for n in 0..3 {
        let err = publisher
            .publish_acknowledged("never", seq(n))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PubSubError::Undelivered { failed, .. }
                if failed.len() == 1 && failed[0].status == DeliveryStatus::Timeout),
            "{err}"
        );
    }
    // Timed-out subscribers stay subscribed (as Go: only unreachable PIDs are removed).
    assert_eq!(got(&log, "fine"), [0, 1, 2]);
    shutdown(vec![a]).await;
}

// ------------------------------------------------------------------ durable stores

/// A store that always fails.
struct FailingStore;

impl SubscriptionStore for FailingStore {
    fn describe(&self) -> String {
        "failing-test-store".into()
    }
    fn get(&self, _: &str) -> Result<Option<Subscribers>, String> {
        Err("disk on fire".into())
    }
    fn set(&self, _: &str, _: &Subscribers) -> Result<(), String> {
        Err("disk on fire".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_is_reported_with_the_topic_and_the_topic_serves_from_memory() {
    let (agent, log) = (InMemAgent::new(), Log::default());
    let a = member(
        &agent,
        &log,
        PubSubConfig::default().with_store(FailingStore),
    );
    wait_for_members(&[&a]).await;
    let failures = Arc::new(Mutex::new(Vec::<StoreFailure>::new()));
    let f = failures.clone();
    let _sub = a
        .system
        .event_stream()
        .subscribe_to::<StoreFailure, _>(move |e| f.lock().push(e.clone()));
    let p = pid_subscriber(&a, "pid", &log);
    a.cluster.subscribe_pid("fire", &p).await.unwrap();
    a.cluster
        .publisher()
        .publish_acknowledged("fire", seq(1))
        .await
        .unwrap();
    assert_eq!(got(&log, "pid"), [1]);
    let seen = failures.lock().clone();
    for op in ["load", "save"] {
        let f = seen
            .iter()
            .find(|f| f.operation == op)
            .unwrap_or_else(|| panic!("no {op} failure in {seen:?}"));
        assert_eq!(f.topic, "fire");
        let text = f.to_string();
        assert!(
            text.contains("\"fire\"")
                && text.contains("failing-test-store")
                && text.contains("disk on fire"),
            "{text}"
        );
    }
    shutdown(vec![a]).await;
}

/// A topic on member A with a PID subscriber on B and two grain subscribers; A dies without
/// leaving (its registration then expires); the topic is activated again on B, loads every
/// subscriber from `store` and the next acknowledged publish reaches all of them.
#[cfg(feature = "persistence")]
async fn the_topic_comes_back_on_b_with_every_subscriber(
    store: protoactor_cluster::pubsub::ProviderStore,
    prefix: &str,
) {
    let (agent, log) = (InMemAgent::new(), Log::default());
    let config = PubSubConfig::default().with_store(store.clone());
    let a = member(&agent, &log, config.clone());
    let b = member(&agent, &log, config);
    wait_for_members(&[&a, &b]).await;
    let topic = topic_owned_by(&a, prefix);
    let p = pid_subscriber(&b, "pid", &log);
    b.cluster.subscribe_pid(&topic, &p).await.unwrap();
    for g in ["g1", "g2"] {
        b.cluster
            .subscribe_identity(&topic, g, "listener")
            .await
            .unwrap();
    }
    let publisher = b.cluster.publisher();
    publisher
        .publish_acknowledged(&topic, seq(1))
        .await
        .unwrap();
    let saved = store.get(&topic).unwrap().expect("saved");
    assert_eq!(saved.subscribers.len(), 3, "{saved:?}");

    // Dies without leaving: no `left` gossip, grains not stopped, then the registration expires.
    let a_id = a.cluster.self_member().id.clone();
    a.cluster.shutdown(false).await;
    a.system.shutdown();
    agent.deregister(&a_id);
    wait_for_members(&[&b]).await;
    publisher
        .publish_acknowledged(&topic, seq(2))
        .await
        .unwrap();
    assert_eq!(got(&log, "pid"), [1, 2]);
    for g in ["grain:g1", "grain:g2"] {
        assert_eq!(got(&log, g).last(), Some(&2), "{g}");
    }
    shutdown(vec![b]).await;
}

#[cfg(feature = "persistence")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_brings_every_subscriber_back_after_the_topic_host_dies() {
    use protoactor_persistence::SqliteProvider;
    let dir = protoactor_testkit::paths::scratch_dir().join(format!(
        "pubsub-sqlite-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("topics.db");
    let open = || {
        protoactor_cluster::pubsub::ProviderStore::new(Arc::new(
            SqliteProvider::open(&db).expect("sqlite"),
        ))
    };
    the_topic_comes_back_on_b_with_every_subscriber(open(), "sq").await;
    // Another connection to the file (another process would open its own) reads them too.
    let reopened = open();
    let topic = (0..)
        .map(|i| format!("sq{i}"))
        .find(|t| reopened.get(t).unwrap().is_some())
        .unwrap();
    assert_eq!(reopened.get(&topic).unwrap().unwrap().subscribers.len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_brings_every_subscriber_back_after_the_topic_host_dies() {
    use protoactor_persistence::PostgresProvider;
    let Some(url) = protoactor_testkit::services::postgres_url("pub/sub PostgreSQL store") else {
        return;
    };
    let provider = PostgresProvider::connect(&url).await.expect("PostgreSQL");
    let store = protoactor_cluster::pubsub::ProviderStore::new(Arc::new(provider));
    // The database is shared with other runs: topic names of this run only.
    let prefix = format!("pg-{}-{}-", std::process::id(), rand_suffix());
    the_topic_comes_back_on_b_with_every_subscriber(store, &prefix).await;
}

/// A suffix that keeps names of concurrent runs apart.
fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}
