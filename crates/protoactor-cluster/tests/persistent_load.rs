//! Many persistent grains waiting for their writes at once, on a small runtime: 1,000
//! activations of a persistent `counter_service` recover from and persist to one SQLite file
//! concurrently (2 worker threads, 8 blocking threads). A grain waiting for storage must
//! hold no thread, or the waiting grains take every blocking thread and the SQLite reads
//! and the group commit that would release them never run (the run hangs).

mod grain_impls;

use std::sync::Arc;
use std::time::Duration;

use grain_impls::grainstest::*;
use grain_impls::PersistentCounter;
use protoactor::prelude::*;
use protoactor::Config;
use protoactor_cluster::persistent::{journal_name, GrainStore};
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{CallOptions, Cluster, ClusterConfig, DistHashIdentityLookup};
use protoactor_persistence::{Provider, SqliteProvider};
use protoactor_remote::{Remote, RemoteConfig};

const GRAINS: usize = 1_000;
const ADDS: i64 = 3;
/// Generous (a loaded machine); without the fix the run never ends.
const DEADLINE: Duration = Duration::from_secs(180);

#[test]
fn a_thousand_persistent_grains_write_at_once_on_a_small_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .expect("runtime");
    let system = ActorSystem::with_config(Config::default().with_runtime(runtime.handle().clone()));
    let remote = Remote::start(&system, RemoteConfig::local()).expect("remote starts");
    register_types(remote.serialization());
    let dir = std::env::temp_dir().join(format!("protoactor-pload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sqlite = Arc::new(SqliteProvider::open(dir.join("load.db")).expect("sqlite"));
    let store: Arc<dyn Provider> = sqlite.clone();
    let config = ClusterConfig::new(
        "pload",
        TestProvider::new(&InMemAgent::new()),
        DistHashIdentityLookup::new(),
    )
    .with_kind(counter_service_persistent_kind(
        GrainStore::new(store.clone()),
        PersistentCounter::default,
    ));
    let cluster = Cluster::start_member(&system, &remote, config).expect("member starts");

    // Every grain at once: each caller activates its grain (a recovery read) and adds
    // ADDS times, each add answered only after its event is durable.
    let opts = CallOptions::default().with_timeout(DEADLINE);
    let calls: Vec<_> = (0..GRAINS)
        .map(|i| {
            let client =
                CounterServiceClient::new(&cluster, format!("c-{i}")).with_options(opts.clone());
            runtime.spawn(async move {
                let mut last = 0;
                for _ in 0..ADDS {
                    last = client.add(AddRequest { amount: i as i64 }).await?.value;
                }
                Ok::<_, protoactor_cluster::GrainError>(last)
            })
        })
        .collect();
    // Waited for from this thread: a runtime whose threads all block fires no timer.
    let (done, results) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let mut out = Vec::new();
        for c in calls {
            out.push(c.await.expect("caller task"));
        }
        let _ = done.send(out);
    });
    let Ok(totals) = results.recv_timeout(DEADLINE) else {
        // Leave the stuck runtime and its users behind: dropping them would wait forever.
        runtime.shutdown_background();
        std::mem::forget((cluster, remote, system));
        panic!("1,000 grains persisting at once did not finish (a waiting grain holds a thread)");
    };
    for (i, total) in totals.into_iter().enumerate() {
        assert_eq!(
            total.expect("adds answered"),
            ADDS * i as i64,
            "grain c-{i}"
        );
    }

    // Every answered event is in the journal, and grains shared commits (group commit).
    let events = runtime
        .block_on(store.get_events(&journal_name(COUNTER_SERVICE_KIND, "c-999"), 0, 100))
        .expect("events");
    assert_eq!(events.len(), ADDS as usize);
    let stats = sqlite.write_stats();
    assert_eq!(stats.writes, GRAINS as u64 * ADDS as u64);
    assert!(
        stats.commits < stats.writes,
        "concurrent grains share commits: {stats:?}"
    );

    cluster.shutdown_blocking(true);
    remote.shutdown();
    system.shutdown();
    drop(runtime);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Requests that reach one grain while its write is in flight wait in the activation and
/// run in arrival order after it: every caller is answered, each with the state after its
/// own event (so no two answers are equal), and the journal holds one event per answer.
#[test]
fn callers_of_one_grain_during_its_writes_are_answered_in_turn() {
    const CALLERS: i64 = 200;
    let system = ActorSystem::with_config(Config::default().with_worker_threads(2));
    let remote = Remote::start(&system, RemoteConfig::local()).expect("remote starts");
    register_types(remote.serialization());
    let dir = std::env::temp_dir().join(format!("protoactor-pone-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store: Arc<dyn Provider> =
        Arc::new(SqliteProvider::open(dir.join("one.db")).expect("sqlite"));
    let config = ClusterConfig::new(
        "pone",
        TestProvider::new(&InMemAgent::new()),
        DistHashIdentityLookup::new(),
    )
    .with_kind(counter_service_persistent_kind(
        GrainStore::new(store.clone()).snapshot_every(16),
        PersistentCounter::default,
    ));
    let cluster = Cluster::start_member(&system, &remote, config).expect("member starts");
    let rt = system.runtime().clone();
    let client = CounterServiceClient::new(&cluster, "one")
        .with_options(CallOptions::default().with_timeout(DEADLINE));
    let calls: Vec<_> = (1..=CALLERS)
        .map(|n| {
            let client = client.clone();
            rt.spawn(async move { client.add(AddRequest { amount: n }).await })
        })
        .collect();
    let (done, results) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let mut out = Vec::new();
        for c in calls {
            out.push(c.await.expect("caller task").expect("add answered").value);
        }
        let _ = done.send(out);
    });
    let mut answers = results
        .recv_timeout(DEADLINE)
        .expect("every caller answered");
    answers.sort_unstable();
    answers.dedup();
    assert_eq!(answers.len(), CALLERS as usize, "one state per answer");
    let sum = CALLERS * (CALLERS + 1) / 2;
    assert_eq!(answers.last(), Some(&sum));
    assert_eq!(client.get_blocking(Nothing {}).expect("get").value, sum);
    let events = rt
        .block_on(store.get_events(&journal_name(COUNTER_SERVICE_KIND, "one"), 0, 1000))
        .expect("events");
    assert_eq!(events.len(), CALLERS as usize);

    cluster.shutdown_blocking(true);
    remote.shutdown();
    system.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
