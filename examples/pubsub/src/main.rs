//! Cluster pub/sub: two members in one process (each its own actor system and remote on a
//! loopback port) with pub/sub started and their topics' subscriptions kept in one SQLite
//! file; a PID subscriber on each member and a grain subscriber; one publish, a batching
//! producer, then an acknowledged publish, which returns once every subscriber has handled
//! it. Prints what each subscriber got, in the order it got it.
//!
//! `cargo run -p protoactor-example-pubsub` (or `cargo run` in this folder)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protoactor::prelude::*;
use protoactor_cluster::pubsub::{ProducerConfig, ProviderStore, PubSub, PubSubConfig};
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{Cluster, ClusterConfig, DistHashIdentityLookup, GrainContext, Kind};
use protoactor_persistence::SqliteProvider;
use protoactor_remote::{Remote, RemoteConfig, WireVariant};

/// The generated messages of package `news`.
pub mod news {
    include!(concat!(env!("OUT_DIR"), "/news.rs"));
}

use news::Headline;

/// What each subscriber got.
type Got = Arc<Mutex<BTreeMap<String, Vec<i64>>>>;

fn record(got: &Got, who: String, n: i64) {
    got.lock().unwrap().entry(who).or_default().push(n);
}

fn member(agent: &Arc<InMemAgent>, store: &ProviderStore, got: &Got) -> (ActorSystem, Cluster) {
    let system = ActorSystem::new();
    // Legacy2024: the wire protoactor-go (the 2024 module) speaks, so Go members can join.
    let remote = Remote::start(
        &system,
        RemoteConfig::local().with_wire_variant(WireVariant::Legacy2024),
    )
    .expect("remote starts");
    // Published messages cross the wire as protobuf: registered on every node.
    remote.serialization().register::<Headline>();
    let g = got.clone();
    let listener = Kind::new(
        "listener",
        Props::from_func(move |ctx| {
            if let Some(h) = ctx.message_as::<Headline>() {
                let me = ctx.cluster_identity().expect("a grain knows its identity");
                record(&g, format!("grain {}", me.identity), h.n);
            }
        }),
    );
    let config = ClusterConfig::new(
        "pubsub",
        TestProvider::new(agent),
        DistHashIdentityLookup::new(),
    )
    .with_kind(listener)
    // Topics keep their subscribers in SQLite: they survive a topic moving to another member.
    .with_service(PubSub::new(
        PubSubConfig::default().with_store(store.clone()),
    ));
    let cluster = Cluster::start_member(&system, &remote, config).expect("member starts");
    (system, cluster)
}

fn headline(n: i64, text: &str) -> Headline {
    Headline {
        n,
        text: text.to_string(),
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let db = std::env::temp_dir().join(format!("protoactor-pubsub-{}.db", std::process::id()));
    let sqlite = SqliteProvider::open(&db).expect("SQLite file");
    let store = ProviderStore::new(Arc::new(sqlite));
    let (agent, got) = (InMemAgent::new(), Got::default());
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
                if let Some(h) = ctx.message_as::<Headline>() {
                    record(&g, format!("actor on member {}", i + 1), h.n);
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

        // One publish (it completes when the topic has fanned it out, as in Go) ...
        let publisher = c2.publisher();
        publisher
            .publish("news", headline(0, "first"))
            .await
            .expect("published");
        // ... a batching producer for the next nine ...
        let producer = c1.batching_producer("news", ProducerConfig::default());
        let results: Vec<_> = (1..10)
            .map(|n| producer.produce(headline(n, "")).expect("queued"))
            .collect();
        for r in results {
            r.await.expect("published");
        }
        // ... and an acknowledged publish: it completes once every subscriber handled it
        // (each subscriber gets one topic's messages in order, so all the earlier ones too).
        match publisher
            .publish_acknowledged("news", headline(10, "last"))
            .await
        {
            Ok(()) => println!("acknowledged: every subscriber handled headline 10"),
            Err(e) => println!("not acknowledged: {e}"),
        }
    });
    for (who, ns) in got.lock().unwrap().iter() {
        println!("{who} got {ns:?}");
    }
    for (s, c) in [(s1, c1), (s2, c2)] {
        c.shutdown_blocking(true);
        s.shutdown();
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}
