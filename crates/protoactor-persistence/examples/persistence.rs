//! An event-sourced counter kept in a SQLite file: run it twice and the second run starts
//! where the first stopped.
//!
//! ```text
//! cargo run -p protoactor-persistence --example persistence            # default file
//! cargo run -p protoactor-persistence --example persistence -- my.db   # another file
//! ```
//!
//! The stored messages, as a Go or C# program would declare them:
//!
//! ```proto
//! syntax = "proto3";
//! package counter;
//! message Incremented { int64 by = 1; }
//! message Snapshot { int64 value = 1; }
//! ```

use std::sync::Arc;
use std::time::Duration;

use protoactor::prelude::*;
use protoactor_persistence::{EventMeta, Journal, Persistence, Persistent, SqliteProvider};

#[derive(Clone, PartialEq, prost::Message)]
struct Incremented {
    #[prost(int64, tag = "1")]
    by: i64,
}
impl prost::Name for Incremented {
    const NAME: &'static str = "Incremented";
    const PACKAGE: &'static str = "counter";
}

#[derive(Clone, PartialEq, prost::Message)]
struct Snapshot {
    #[prost(int64, tag = "1")]
    value: i64,
}
impl prost::Name for Snapshot {
    const NAME: &'static str = "Snapshot";
    const PACKAGE: &'static str = "counter";
}

/// Commands (plain Rust messages, not stored).
struct Increment(i64);
struct Status;

#[derive(Default)]
struct Counter {
    value: i64,
}

impl Persistent for Counter {
    type Event = Incremented;
    type Snapshot = Snapshot;

    fn apply_event(&mut self, e: Incremented, _: EventMeta) {
        self.value += e.by;
    }
    fn apply_snapshot(&mut self, s: Snapshot, _: u64) {
        self.value = s.value;
    }
    fn snapshot(&self) -> Snapshot {
        Snapshot { value: self.value }
    }

    fn receive(&mut self, ctx: &mut Context, journal: &mut Journal<Self>) {
        if let Some(Increment(by)) = ctx.message_as::<Increment>() {
            let event = Incremented { by: *by };
            match journal.persist_event(self, ctx, event) {
                Ok(_) => ctx.respond(self.value),
                // Not stored, not applied: let the supervisor restart (and re-recover) it.
                Err(e) => ctx.fail(e.into()),
            }
        } else if ctx.message().is::<Status>() {
            ctx.respond(format!(
                "{} (replayed {} events after snapshot {:?}; journal has {} events)",
                self.value,
                journal.replayed_events(),
                journal.recovered_snapshot_index(),
                journal.next_index()
            ));
        }
    }
}

fn main() {
    // Framework logs go to stderr; RUST_LOG picks the level (`info` when unset).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let path = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("protoactor-persistence-counter.db"));
    let provider = match SqliteProvider::open(&path) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("cannot open {}: {e}", path.display());
            std::process::exit(1);
        }
    };
    println!("journal: {}", path.display());

    let system = ActorSystem::new();
    let props = Persistence::using(provider)
        .with_snapshot_interval(5)
        .props(Counter::default);
    let counter = system
        .root()
        .spawn_named(&props, "counter")
        .expect("spawn the counter");
    let timeout = Duration::from_secs(10);

    let status = system
        .root()
        .request_future(&counter, Status, timeout)
        .result_as::<String>()
        .expect("the counter answers");
    println!("recovered value: {status}");

    let mut value = 0;
    for _ in 0..3 {
        value = system
            .root()
            .request_future(&counter, Increment(1), timeout)
            .result_as::<i64>()
            .expect("the increment is persisted");
    }
    println!("new value: {value} (run me again: the counter goes on from here)");
    system.shutdown();
}
