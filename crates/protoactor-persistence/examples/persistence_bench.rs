//! Events persisted per second, per provider, through a persistent actor; and events
//! replayed per second on recovery.
//!
//! ```text
//! cargo run --release -p protoactor-persistence --example persistence_bench -- [EVENTS]
//! ```
//!
//! Rows: `one-by-one` (one `persist_event` per command: one storage round trip and commit
//! each), `batched-100` (`persist_events` of 100: one round trip per batch) and `recovery`
//! (a restarted actor replaying the whole journal). PostgreSQL is measured when
//! `PROTOACTOR_POSTGRES_URL` is set.

use std::sync::Arc;
use std::time::{Duration, Instant};

use protoactor::prelude::*;
use protoactor_persistence::{
    EventMeta, InMemoryProvider, Journal, Persistence, Persistent, PostgresProvider, Provider,
    SqliteProvider,
};

#[derive(Clone, PartialEq, prost::Message)]
struct Added {
    #[prost(int64, tag = "1")]
    amount: i64,
}
impl prost::Name for Added {
    const NAME: &'static str = "Added";
    const PACKAGE: &'static str = "bench";
}
#[derive(Clone, PartialEq, prost::Message)]
struct Total {
    #[prost(int64, tag = "1")]
    value: i64,
}
impl prost::Name for Total {
    const NAME: &'static str = "Total";
    const PACKAGE: &'static str = "bench";
}

struct Add;
struct AddBatch(usize);
struct Get;

#[derive(Default)]
struct Counter {
    value: i64,
}

impl Persistent for Counter {
    type Event = Added;
    type Snapshot = Total;
    fn apply_event(&mut self, e: Added, _: EventMeta) {
        self.value += e.amount;
    }
    fn apply_snapshot(&mut self, s: Total, _: u64) {
        self.value = s.value;
    }
    fn snapshot(&self) -> Total {
        Total { value: self.value }
    }
    fn receive(&mut self, ctx: &mut Context, journal: &mut Journal<Self>) {
        let r = if ctx.message().is::<Add>() {
            journal
                .persist_event(self, ctx, Added { amount: 1 })
                .map(|_| ())
        } else if let Some(AddBatch(n)) = ctx.message_as::<AddBatch>() {
            let events = (0..*n).map(|_| Added { amount: 1 }).collect();
            journal.persist_events(self, ctx, events).map(|_| ())
        } else {
            if ctx.message().is::<Get>() {
                ctx.respond(self.value);
            }
            Ok(())
        };
        if let Err(e) = r {
            eprintln!("persist failed: {e}");
            ctx.fail(e.into());
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(600);

fn value(system: &ActorSystem, pid: &Pid) -> i64 {
    system
        .root()
        .request_future(pid, Get, TIMEOUT)
        .result_as::<i64>()
        .expect("the counter answers")
}

fn measure(label: &str, open: &dyn Fn(&ActorSystem) -> Arc<dyn Provider>, events: u64) {
    let name = format!("bench-{}-{}", std::process::id(), label);
    let mut rows = Vec::new();
    let system = ActorSystem::new();
    let props = Persistence::using(open(&system)).props(Counter::default);

    let one = system
        .root()
        .spawn_named(&props, &format!("{name}-one"))
        .unwrap();
    let t = Instant::now();
    for _ in 0..events {
        system.root().send(&one, Add);
    }
    assert_eq!(value(&system, &one), events as i64);
    rows.push(("one-by-one", events, t.elapsed()));

    let batched = system
        .root()
        .spawn_named(&props, &format!("{name}-batch"))
        .unwrap();
    let t = Instant::now();
    for _ in 0..events / 100 {
        system.root().send(&batched, AddBatch(100));
    }
    assert_eq!(value(&system, &batched), (events / 100 * 100) as i64);
    rows.push(("batched-100", events / 100 * 100, t.elapsed()));
    system.shutdown();

    // A new program: recover the batched journal.
    let system = ActorSystem::new();
    let props = Persistence::using(open(&system)).props(Counter::default);
    let t = Instant::now();
    let again = system
        .root()
        .spawn_named(&props, &format!("{name}-batch"))
        .unwrap();
    assert_eq!(value(&system, &again), (events / 100 * 100) as i64);
    rows.push(("recovery", events / 100 * 100, t.elapsed()));
    system.shutdown();

    for (row, n, d) in rows {
        println!(
            "| {label:<10} | {row:<12} | {n:>8} | {:>10.3} | {:>12.0} |",
            d.as_secs_f64(),
            n as f64 / d.as_secs_f64()
        );
    }
}

fn main() {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    println!("| provider   | mode         |   events |   seconds |     events/s |");
    println!("|------------|--------------|---------:|----------:|-------------:|");

    let memory: Arc<dyn Provider> = Arc::new(InMemoryProvider::new());
    measure("memory", &|_| memory.clone(), events);

    let dir = std::env::temp_dir().join(format!("persistence-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bench.db");
    measure(
        "sqlite",
        &|_| Arc::new(SqliteProvider::open(&path).expect("open SQLite")),
        events,
    );
    let _ = std::fs::remove_dir_all(&dir);

    match std::env::var("PROTOACTOR_POSTGRES_URL") {
        Ok(url) => measure(
            "postgres",
            &|s| {
                Arc::new(
                    s.runtime()
                        .block_on(PostgresProvider::connect(&url))
                        .expect("connect to PostgreSQL"),
                )
            },
            events,
        ),
        Err(_) => eprintln!("postgres: skipped (PROTOACTOR_POSTGRES_URL is not set)"),
    }
}
