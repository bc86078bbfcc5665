//! Typed grains: `proto/hello.proto` is compiled by `protoactor-cluster-build` in build.rs; here a `Hello` grain and a `Counter` grain implement the generated traits and
//! are called through the generated clients. The counter stores its value with
//! protoactor-persistence (SQLite, a file in the temp dir), so its state survives the
//! grain's re-activation after its idle timeout stopped it.
//!
//! `cargo run -p protoactor-example-cluster-grains` (or `cargo run` in this folder)

use std::sync::Arc;
use std::time::{Duration, Instant};

use protoactor::prelude::*;
use protoactor_cluster::grain::GrainCtx;
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{Cluster, ClusterConfig, DistHashIdentityLookup, GrainError};
use protoactor_persistence::{PersistentMessage, Provider, SqliteProvider};
use protoactor_remote::{Remote, RemoteConfig};

/// The generated messages, grain traits, kinds and clients of package `hello`.
pub mod hello {
    include!(concat!(env!("OUT_DIR"), "/hello.rs"));
}

use hello::*;

struct HelloGrain;

impl Hello for HelloGrain {
    fn say_hello(
        &mut self,
        req: SayHelloRequest,
        ctx: &mut GrainCtx<'_, Self>,
    ) -> Result<SayHelloResponse, GrainError> {
        if req.name.is_empty() {
            return Err(GrainError::invalid_argument("who should I greet?"));
        }
        Ok(SayHelloResponse {
            message: format!("Hello {} from grain {}", req.name, ctx.identity()),
        })
    }
}

/// A counter per identity (`counter/<identity>`): each increment journaled, its value
/// snapshotted after it.
struct CounterGrain {
    store: Arc<dyn Provider>,
    value: i64,
    version: u64,
}

impl CounterGrain {
    /// Waits for a storage call. Grains run on the actor system's multi-thread runtime; the
    /// wait lends the thread to its other tasks (as protoactor-persistence's actors do).
    fn wait<T>(ctx: &GrainCtx<'_, Self>, fut: impl std::future::Future<Output = T>) -> T {
        let rt = ctx.system().runtime().clone();
        tokio::task::block_in_place(|| rt.block_on(fut))
    }
    fn key(ctx: &GrainCtx<'_, Self>) -> String {
        format!("counter/{}", ctx.identity())
    }
}

impl Counter for CounterGrain {
    fn init(&mut self, ctx: &mut GrainCtx<'_, Self>) {
        let store = self.store.clone();
        let key = Self::key(ctx);
        match Self::wait(ctx, store.get_snapshot(&key)) {
            Ok(Some(entry)) => {
                let saved =
                    CounterValue::decode_payload(&entry.record.type_name, &entry.record.payload)
                        .expect("a stored counter value");
                self.value = saved.value;
                self.version = entry.index;
            }
            Ok(None) => {}
            Err(e) => eprintln!("cannot read {key}: {e}"),
        }
        println!("activated {} with value {}", ctx.identity(), self.value);
    }

    fn increment(
        &mut self,
        req: IncrementRequest,
        ctx: &mut GrainCtx<'_, Self>,
    ) -> Result<CounterValue, GrainError> {
        let next = CounterValue {
            value: self.value + req.by,
        };
        let store = self.store.clone();
        let key = Self::key(ctx);
        // The increment is journaled at the next index, then the value is snapshotted after
        // it (a snapshot covers the events before its index), so re-activation reads one row.
        let index = self.version;
        Self::wait(ctx, async {
            store.persist_event(&key, index, req.to_record()).await?;
            store
                .persist_snapshot(&key, index + 1, next.to_record())
                .await
        })
        .map_err(|e| GrainError::unavailable(format!("cannot store the counter: {e}")))?;
        self.value = next.value;
        self.version += 1;
        Ok(next)
    }

    fn get(
        &mut self,
        _req: Empty,
        _ctx: &mut GrainCtx<'_, Self>,
    ) -> Result<CounterValue, GrainError> {
        Ok(CounterValue { value: self.value })
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
    let db = std::env::temp_dir().join(format!("protoactor-grains-{}.db", std::process::id()));
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::open(&db).expect("sqlite file"));

    let system = ActorSystem::new();
    let remote = Remote::start(&system, RemoteConfig::local()).expect("remote starts");
    // The generated messages, registered with the remote serializer in one call.
    register_types(remote.serialization());
    let s = store.clone();
    let config = ClusterConfig::new(
        "grains",
        TestProvider::new(&InMemAgent::new()),
        DistHashIdentityLookup::new(),
    )
    .with_kind(hello_kind(|| HelloGrain))
    // A short idle timeout, to see a re-activation (generated kinds default to Go's 60 s).
    .with_kind(counter_kind_with_timeout(
        move || CounterGrain {
            store: s.clone(),
            value: 0,
            version: 0,
        },
        Duration::from_millis(300),
    ));
    let cluster = Cluster::start_member(&system, &remote, config).expect("member starts");

    let hello = HelloClient::new(&cluster, "ann");
    let r = hello
        .say_hello_blocking(SayHelloRequest { name: "Ann".into() })
        .expect("hello");
    println!("hello: {}", r.message);
    let e = hello
        .say_hello_blocking(SayHelloRequest::default())
        .unwrap_err();
    println!("hello error: {} {}", e.reason, e.message);

    let counter = CounterClient::new(&cluster, "visits");
    let values: Vec<String> = (0..3)
        .map(|_| {
            let v = counter
                .increment_blocking(IncrementRequest { by: 1 })
                .expect("increment");
            v.value.to_string()
        })
        .collect();
    println!("counter: {}", values.join(", "));

    // Idle for longer than the timeout: the activation stops...
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.activation_counts()[COUNTER_KIND] > 0 {
        assert!(Instant::now() < deadline, "the counter never went idle");
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("counter stopped after its idle timeout");
    // ...and the next call re-activates it from storage.
    let v = counter.get_blocking(Empty {}).expect("get");
    println!("counter after re-activation: {}", v.value);

    cluster.shutdown_blocking(true);
    system.shutdown();
    let _ = std::fs::remove_file(&db);
}
