//! Cluster pub/sub between Rust members in one process (each member its own actor system and
//! remote on a loopback port): Go's dialect end to end, and what it does better than Go.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use protoactor::prelude::*;
use protoactor::{BoxedMessage, Config};
use protoactor_cluster::proto::{
    DeliverBatchRequestTransport, PubSubBatchTransport, PubSubEnvelope, Subscribers,
};
use protoactor_cluster::pubsub::{
    InMemoryStore, ProducerConfig, PubSub, PubSubConfig, PubSubError, SubscriptionStore,
    DELIVERY_NAME, TOPIC_KIND,
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

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
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
    init_tracing();
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

/// The topic name (`t<i>`) whose owner among the members is `node`.
fn topic_owned_by(node: &Node) -> String {
    (0..)
        .map(|i| format!("t{i}"))
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
    let topic = topic_owned_by(&a);
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
    init_tracing();
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
    // The first batch hangs on the missing topic, the queue holds one more: then full.
    let outcomes: Vec<_> = (0..3).map(|n| producer.produce(seq(n))).collect();
    assert!(outcomes
        .iter()
        .any(|o| matches!(o, Err(PubSubError::QueueFull))));
    for o in outcomes.into_iter().flatten() {
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
    // A 10 MB message is refused before it is sent.
    let big = Seq {
        n: 0,
        tag: "x".repeat(10 << 20),
    };
    assert!(matches!(
        publisher.publish("b", big).await,
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
        }),
        topic: "b".into(),
    };
    let delivery = Pid::new(a.cluster.address(), DELIVERY_NAME);
    a.system.root().send(&delivery, bad.clone());
    let mut with_sub = bad;
    with_sub.subscribers = Some(Subscribers {
        subscribers: vec![protoactor_cluster::proto::SubscriberIdentity {
            identity: Some(
                protoactor_cluster::proto::subscriber_identity::Identity::Pid(
                    protoactor_remote::PidExt::to_proto(&p),
                ),
            ),
        }],
    });
    a.system.root().send(&delivery, with_sub);
    publisher.publish("b", seq(2)).await.unwrap();
    wait_for("after bad input", || got(&log, "pid") == [1, 2]).await;
    shutdown(vec![a]).await;
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
