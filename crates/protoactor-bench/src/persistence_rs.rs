//! The `persistence` workload on protoactor-rs: an event-sourced counter
//! (`protoactor-persistence`) measured per provider — in-memory, SQLite (a file, WAL) and,
//! when `PROTOACTOR_POSTGRES_URL` is set, PostgreSQL.
//!
//! Per provider, three metrics (events/s):
//! - `persistence:<provider>`: one `persist_event` per command (one storage round trip and
//!   one commit each);
//! - `persistence-batched:<provider>`: `persist_events` of 100 per command;
//! - `persistence-100-actors:<provider>`: 100 actors, each persisting one event per command,
//!   commands sent to all of them at once (SQL providers commit their concurrent writes in
//!   groups);
//! - `persistence-recovery:<provider>`: a new actor system restarts the actor, which replays
//!   the batched journal.
//!
//! Sizes: `EVENTS` (a multiple of 100) for every row except PostgreSQL one-by-one, which
//! stores `PG_EVENTS` (one durable commit per event makes it slow).

/// Actors of the `persistence-100-actors` row.
const ACTORS: u64 = 100;

use std::sync::Arc;
use std::time::Instant;

use protoactor::prelude::*;
use protoactor_persistence::{
    EventMeta, InMemoryProvider, Journal, Persistence, Persistent, PostgresProvider, Provider,
    SqliteProvider,
};

use crate::common::*;

/// The stored event: the same protobuf shape as Go's `google.protobuf.Int64Value`.
#[derive(Clone, PartialEq, prost::Message)]
struct Added {
    #[prost(int64, tag = "1")]
    amount: i64,
}
// `full_name` as a literal, as prost-build's generated code has it (the trait's default
// builds the name with `format!` on every call, i.e. on every stored and replayed event).
impl prost::Name for Added {
    const NAME: &'static str = "Added";
    const PACKAGE: &'static str = "bench";
    fn full_name() -> String {
        "bench.Added".into()
    }
}

/// The counter's snapshot (never requested here: no snapshot interval).
#[derive(Clone, PartialEq, prost::Message)]
struct Total {
    #[prost(int64, tag = "1")]
    value: i64,
}
impl prost::Name for Total {
    const NAME: &'static str = "Total";
    const PACKAGE: &'static str = "bench";
    fn full_name() -> String {
        "bench.Total".into()
    }
}

/// Command: persist one event.
struct Add;
/// Command: persist this many events in one `persist_events`.
struct AddBatch(usize);
/// Request: the counter's value (an `i64`).
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
            // The event is not applied; the count check in `expect_value` reports the loss.
            eprintln!("persist failed: {e}");
            ctx.fail(e.into());
        }
    }
}

/// Opens a provider for one actor system (PostgreSQL's client lives on that system's runtime).
type Open<'a> = dyn Fn(&ActorSystem) -> Result<Arc<dyn Provider>, String> + 'a;

/// Runs the workload: `[EVENTS, PG_EVENTS]`.
pub fn run(p: &[u64]) -> RunResult {
    let [events, pg_events] = params("persistence", p)?;
    if events == 0 || !events.is_multiple_of(100) {
        return Err(format!(
            "persistence: EVENTS must be a positive multiple of 100, got {events}"
        ));
    }
    if pg_events == 0 {
        return Err("persistence: PG_EVENTS must be positive".into());
    }
    // Unique per run: a PostgreSQL database outlives the run.
    let tag = format!(
        "bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let mut metrics = Vec::new();

    let memory: Arc<dyn Provider> = Arc::new(InMemoryProvider::new());
    metrics.extend(measure(
        "memory",
        &tag,
        &|_| Ok(memory.clone()),
        events,
        events,
    )?);

    let dir = std::env::temp_dir().join(format!("protoactor-bench-{tag}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("temp dir {}: {e}", dir.display()))?;
    let path = dir.join("bench.db");
    let sqlite = measure(
        "sqlite",
        &tag,
        &|_| {
            SqliteProvider::open(&path)
                .map(|p| Arc::new(p) as Arc<dyn Provider>)
                .map_err(|e| format!("open SQLite {}: {e}", path.display()))
        },
        events,
        events,
    );
    let _ = std::fs::remove_dir_all(&dir);
    metrics.extend(sqlite?);

    if let Ok(url) = std::env::var("PROTOACTOR_POSTGRES_URL") {
        metrics.extend(measure(
            "postgres",
            &tag,
            &|s| {
                s.runtime()
                    .block_on(PostgresProvider::connect(&url))
                    .map(|p| Arc::new(p) as Arc<dyn Provider>)
                    .map_err(|e| format!("connect to PostgreSQL: {e}"))
            },
            pg_events,
            events,
        )?);
    } else {
        eprintln!("persistence: postgres rows skipped (PROTOACTOR_POSTGRES_URL is not set)");
    }
    Ok(metrics)
}

/// Asks the counter for its value and checks it.
fn expect_value(system: &ActorSystem, pid: &Pid, expected: u64, what: &str) -> Result<(), String> {
    let v = system
        .root()
        .request_future(pid, Get, RUN_TIMEOUT)
        .result_as::<i64>()
        .map_err(|e| format!("{what}: no count from the counter: {e:?}"))?;
    if v != expected as i64 {
        return Err(format!(
            "{what}: the counter holds {v}, expected {expected}"
        ));
    }
    Ok(())
}

/// One provider's three rows; `one` events one by one, `batched` events in batches of 100.
fn measure(
    label: &str,
    tag: &str,
    open: &Open<'_>,
    one: u64,
    batched: u64,
) -> Result<Vec<Metric>, String> {
    let name_one = format!("{tag}-{label}-one");
    let name_batch = format!("{tag}-{label}-batch");
    let names_many: Vec<String> = (0..ACTORS)
        .map(|i| format!("{tag}-{label}-many-{i}"))
        .collect();
    let mut out = Vec::new();

    let system = ActorSystem::new();
    let r = (|| {
        let provider = open(&system)?;
        let props = Persistence::using(provider).props(Counter::default);
        let spawn = |name: &str| {
            system
                .root()
                .spawn_named(&props, name)
                .map_err(|e| format!("{label}: spawn {name}: {e:?}"))
        };

        let pid = spawn(&name_one)?;
        // Recovery of the (empty) journal is not part of the measured time.
        expect_value(&system, &pid, 0, label)?;
        let t = Instant::now();
        for _ in 0..one {
            system.root().send(&pid, Add);
        }
        expect_value(&system, &pid, one, label)?;
        out.push(Metric::new(
            &format!("persistence:{label}"),
            one as f64 / t.elapsed().as_secs_f64(),
            "events/s",
        ));

        let pid = spawn(&name_batch)?;
        expect_value(&system, &pid, 0, label)?;
        let t = Instant::now();
        for _ in 0..batched / 100 {
            system.root().send(&pid, AddBatch(100));
        }
        expect_value(&system, &pid, batched, label)?;
        out.push(Metric::new(
            &format!("persistence-batched:{label}"),
            batched as f64 / t.elapsed().as_secs_f64(),
            "events/s",
        ));

        // Many actors at once: `batched` events in all, one per command.
        let pids = names_many
            .iter()
            .map(|n| spawn(n))
            .collect::<Result<Vec<_>, _>>()?;
        for pid in &pids {
            expect_value(&system, pid, 0, label)?;
        }
        let per_actor = batched / ACTORS;
        let t = Instant::now();
        for _ in 0..per_actor {
            for pid in &pids {
                system.root().send(pid, Add);
            }
        }
        for pid in &pids {
            expect_value(&system, pid, per_actor, label)?;
        }
        out.push(Metric::new(
            &format!("persistence-100-actors:{label}"),
            (per_actor * ACTORS) as f64 / t.elapsed().as_secs_f64(),
            "events/s",
        ));
        Ok::<_, String>(())
    })();
    system.shutdown();
    r?;

    // A new program: the actor recovers the batched journal.
    let system = ActorSystem::new();
    let r = (|| {
        let provider = open(&system)?;
        let props = Persistence::using(provider.clone()).props(Counter::default);
        let t = Instant::now();
        let pid = system
            .root()
            .spawn_named(&props, &name_batch)
            .map_err(|e| format!("{label}: spawn {name_batch}: {e:?}"))?;
        expect_value(&system, &pid, batched, &format!("{label} recovery"))?;
        out.push(Metric::new(
            &format!("persistence-recovery:{label}"),
            batched as f64 / t.elapsed().as_secs_f64(),
            "events/s",
        ));
        // Leave nothing behind in a database that outlives the run.
        system.root().stop(&pid);
        for name in [&name_one, &name_batch].into_iter().chain(&names_many) {
            system
                .runtime()
                .block_on(provider.delete_events(name, i64::MAX as u64))
                .map_err(|e| format!("{label}: delete {name}: {e}"))?;
        }
        Ok::<_, String>(())
    })();
    system.shutdown();
    r?;
    Ok(out)
}
