//! Memory at scale, measured rather than asserted (the figures go in BENCHMARKS.md):
//! `cargo test --release -p protoactor-cluster --test scale -- --ignored --nocapture`.
//! Resident bytes come from `/proc/self/statm`, so the figures include allocator overhead.

use std::time::Instant;

use protoactor::prelude::*;
use protoactor_cluster::pid_cache::PidCache;
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{Cluster, ClusterConfig, ClusterIdentity, DistHashIdentityLookup, Kind};
use protoactor_remote::{Remote, RemoteConfig};

const GRAINS: usize = 100_000;

/// Resident bytes of this process (Linux).
fn resident() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn idle_grain_and_cached_pid_resident_bytes_at_100_000() {
    // A cached PID alone: the cache as a caller holds it, PIDs shaped as disthash makes them.
    let before = resident();
    let cache = PidCache::new();
    for i in 0..GRAINS {
        cache.set(
            ClusterIdentity::new(format!("user-{i:08}"), "idle"),
            Pid::new(
                "127.0.0.1:41901",
                format!("partition-activator/user-{i:08}${}", i + 1),
            ),
        );
    }
    let per_cached = (resident() - before) / GRAINS;
    drop(cache);

    // Idle grains on one member (which also caches their PIDs, as any caller would).
    let system = ActorSystem::new();
    let remote = Remote::start(&system, RemoteConfig::local()).unwrap();
    let idle = Props::from_func(|_| {});
    let config = ClusterConfig::new(
        "scale",
        TestProvider::new(&InMemAgent::new()),
        DistHashIdentityLookup::new(),
    )
    .with_kind(Kind::new("idle", idle));
    let cluster = Cluster::start_member(&system, &remote, config).unwrap();
    // Warm up (first activation, allocator arenas).
    for i in 0..1_000 {
        cluster
            .get_blocking(&ClusterIdentity::new(format!("warm-{i}"), "idle"))
            .unwrap();
    }
    let before = resident();
    let started = Instant::now();
    system.runtime().block_on(async {
        for chunk in (0..GRAINS).collect::<Vec<_>>().chunks(1_000) {
            let calls: Vec<_> = chunk
                .iter()
                .map(|i| cluster.get(&ClusterIdentity::new(format!("user-{i:08}"), "idle")))
                .collect();
            for c in calls {
                c.await.unwrap();
            }
        }
    });
    let elapsed = started.elapsed();
    let per_grain_and_pid = (resident() - before) / GRAINS;
    assert_eq!(cluster.activation_counts()["idle"], (GRAINS + 1_000) as i64);
    println!(
        "{GRAINS} idle grains activated in {elapsed:?}: {per_grain_and_pid} B resident per grain \
         (its activation and its cached PID); a cached PID alone: {per_cached} B; so an idle \
         grain without its cached PID: {} B",
        per_grain_and_pid.saturating_sub(per_cached)
    );
    cluster.shutdown_blocking(false);
    remote.shutdown();
    system.shutdown();
}
