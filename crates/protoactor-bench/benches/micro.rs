//! Micro-benchmarks of protoactor-rs's hot paths (divan):
//! `cargo bench -p protoactor-bench --bench micro`.
//!
//! - `mailbox`: 1000 sends into one actor plus a request that flushes them (per mailbox kind);
//! - `registry`: looking a process up by id among 10k, resolving a PID, and id generation.
//!
//! The remote batch encode/decode micro-benchmark is `benches/remote_codec.rs`.

use std::time::Duration;

use divan::counter::ItemsCount;
use divan::Bencher;
use protoactor::prelude::*;

fn main() {
    divan::main();
}

struct Flush;

fn sink(mailbox: &str) -> Props {
    let config = match mailbox {
        "bounded" => MailboxConfig::bounded(1024),
        "priority" => MailboxConfig::priority(|_| 4),
        _ => MailboxConfig::unbounded(),
    };
    Props::from_func(|ctx| {
        if ctx.message().is::<Flush>() {
            ctx.respond(());
        }
    })
    .with_mailbox(config)
}

/// Sends 1000 messages to one actor and waits until it has processed them.
#[divan::bench(args = ["unbounded", "bounded", "priority"], sample_count = 50)]
fn mailbox(bencher: Bencher, kind: &str) {
    let system = ActorSystem::new();
    let root = system.root();
    let pid = root.spawn(&sink(kind));
    bencher.counter(ItemsCount::new(1000usize)).bench_local(|| {
        for i in 0..1000u32 {
            root.send(&pid, i);
        }
        root.request_future(&pid, Flush, Duration::from_secs(10))
            .wait()
            .expect("flush answered");
    });
    system.shutdown();
}

/// Looks processes up by id in a registry holding 10k actors.
#[divan::bench]
fn registry_get_local(bencher: Bencher) {
    let system = ActorSystem::new();
    let root = system.root();
    let props = Props::from_func(|_| {});
    let ids: Vec<String> = (0..10_000)
        .map(|_| root.spawn(&props).id().to_string())
        .collect();
    let mut i = 0;
    bencher.bench_local(|| {
        i = (i + 1) % ids.len();
        system.registry().get_local(&ids[i]).is_some()
    });
    system.shutdown();
}

/// Resolves a PID whose process is not cached (a fresh PID each time, as after decoding).
#[divan::bench]
fn registry_resolve_fresh_pid(bencher: Bencher) {
    let system = ActorSystem::new();
    let pid = system.root().spawn(&Props::from_func(|_| {}));
    let id = pid.id().to_string();
    bencher.bench_local(|| {
        let fresh = system.new_local_pid(&id);
        fresh.resolve(&system)
    });
    system.shutdown();
}

/// Generates actor ids.
#[divan::bench]
fn registry_next_id(bencher: Bencher) {
    let system = ActorSystem::new();
    bencher.bench_local(|| system.registry().next_id());
    system.shutdown();
}
