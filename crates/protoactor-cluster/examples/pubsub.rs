//! Cluster pub/sub: two members in one process (each its own actor system and remote on a
//! loopback port) with pub/sub started, a topic, a PID subscriber on each member, a grain
//! subscriber, and a batching producer publishing to the topic. Prints what each subscriber
//! got, in the order it got it.
//!
//! `cargo run -p protoactor-cluster --example pubsub`

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protoactor::prelude::*;
use protoactor_cluster::pubsub::{InMemoryStore, ProducerConfig, PubSub, PubSubConfig};
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{Cluster, ClusterConfig, DistHashIdentityLookup, GrainContext, Kind};
#[path = "../../protoactor-remote/shared/messages.rs"]
mod messages;
use messages::Seq;
use protoactor_remote::{Remote, RemoteConfig, WireVariant};

/// What each subscriber got.
type Got = Arc<Mutex<BTreeMap<String, Vec<i64>>>>;

fn record(got: &Got, who: String, n: i64) {
    got.lock().unwrap().entry(who).or_default().push(n);
}

fn member(agent: &Arc<InMemAgent>, store: &InMemoryStore, got: &Got) -> (ActorSystem, Cluster) {
    let system = ActorSystem::new();
    let remote = Remote::start(
        &system,
        RemoteConfig::local().with_wire_variant(WireVariant::Legacy2024),
    )
    .expect("remote starts");
    // Published messages cross the wire as protobuf: registered on every node.
    remote.serialization().register::<Seq>();
    let g = got.clone();
    let listener = Kind::new(
        "listener",
        Props::from_func(move |ctx| {
            if let Some(s) = ctx.message_as::<Seq>() {
                let me = ctx.cluster_identity().expect("a grain knows its identity");
                record(&g, format!("grain {}", me.identity), s.n);
            }
        }),
    );
    let config = ClusterConfig::new(
        "pubsub",
        TestProvider::new(agent),
        DistHashIdentityLookup::new(),
    )
    .with_kind(listener)
    // Topics keep their subscribers in the store: they survive a topic moving.
    .with_service(PubSub::new(
        PubSubConfig::default().with_store(store.clone()),
    ));
    let cluster = Cluster::start_member(&system, &remote, config).expect("member starts");
    (system, cluster)
}

fn main() {
    let (agent, store, got) = (InMemAgent::new(), InMemoryStore::new(), Got::default());
    let (s1, c1) = member(&agent, &store, &got);
    let (s2, c2) = member(&agent, &store, &got);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for c in [&c1, &c2] {
            assert!(
                c.member_list()
                    .wait_until(Duration::from_secs(30), |t| t.members().count() == 2)
                    .await,
                "the members never saw each other"
            );
        }
        // A PID subscriber on each member, and a grain (activated wherever it is owned).
        for (i, (system, cluster)) in [(&s1, &c1), (&s2, &c2)].into_iter().enumerate() {
            let g = got.clone();
            let pid = system.root().spawn(&Props::from_func(move |ctx| {
                if let Some(s) = ctx.message_as::<Seq>() {
                    record(&g, format!("actor on member {}", i + 1), s.n);
                }
            }));
            cluster
                .subscribe_pid("news", &pid)
                .await
                .expect("subscribed");
        }
        c1.subscribe_identity("news", "reader", "listener")
            .await
            .expect("subscribed");

        // One publish, then a batching producer for the rest.
        c2.publisher()
            .publish(
                "news",
                Seq {
                    n: 0,
                    tag: "first".into(),
                },
            )
            .await
            .expect("published");
        let producer = c1.batching_producer("news", ProducerConfig::default());
        let results: Vec<_> = (1..10)
            .map(|n| {
                producer
                    .produce(Seq {
                        n,
                        tag: String::new(),
                    })
                    .expect("queued")
            })
            .collect();
        for r in results {
            r.await.expect("published");
        }
        // Publishing completes at fan-out: wait until every subscriber has all ten.
        for _ in 0..1500 {
            let done = {
                let g = got.lock().unwrap();
                g.len() == 3 && g.values().all(|v| v.len() == 10)
            };
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    for (who, ns) in got.lock().unwrap().iter() {
        println!("{who} got {ns:?}");
    }
    for (s, c) in [(s1, c1), (s2, c2)] {
        c.shutdown_blocking(true);
        s.shutdown();
    }
}
