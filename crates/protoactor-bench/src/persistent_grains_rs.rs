//! The `persistent-grains` workload: persisted requests per second of a persistent typed
//! grain (`Builder::persistent`, the bank example's `Account` service): each request is one
//! `Deposit` that persists one event, answered after the event is durable. One cluster
//! member in this process (test provider), the grain kind journaled in one provider:
//!
//! - `persistent-grains:<provider>`: one grain, one caller, requests one after another
//!   (one storage round trip and one commit per request);
//! - `persistent-grains-many:<provider>`: `GRAINS` grains, one caller per grain, all at once
//!   (the SQL providers commit concurrent writes of different grains together).
//!
//! Providers: in-memory, SQLite (a file, WAL), PostgreSQL when `PROTOACTOR_POSTGRES_URL` is
//! set. Activation and recovery are not timed (each grain answers a first request before).

use std::sync::Arc;
use std::time::Instant;

use protoactor::prelude::*;
use protoactor_cluster::persistent::{GrainStore, PersistentCtx, PersistentGrain};
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{Cluster, ClusterConfig, DistHashIdentityLookup, GrainError};
use protoactor_persistence::{InMemoryProvider, PostgresProvider, Provider, SqliteProvider};
use protoactor_remote::{Remote, RemoteConfig};

use crate::common::*;

/// The bank example's service, generated with the persistent option.
#[allow(dead_code)]
mod bank {
    include!(concat!(env!("OUT_DIR"), "/bank.rs"));
}

use bank::*;

/// An account that only counts: one `Deposited` event per deposit.
#[derive(Default)]
struct Counter {
    balance: i64,
}

impl PersistentGrain for Counter {
    type Event = Deposited;
    type Snapshot = AccountState;
    fn apply(&mut self, e: Deposited) {
        self.balance += e.amount;
    }
    fn snapshot(&self) -> AccountState {
        AccountState {
            balance: self.balance,
            last_op_id: 0,
        }
    }
    fn restore(&mut self, s: AccountState) {
        self.balance = s.balance;
    }
}

impl AccountPersistent for Counter {
    fn deposit(ctx: &mut PersistentCtx<'_, Self>, req: Change) -> Result<Balance, GrainError> {
        ctx.persist(Deposited {
            amount: req.amount,
            op_id: 0,
        });
        Ok(Balance {
            amount: ctx.balance,
            events: ctx.next_index(),
        })
    }
    fn withdraw(_: &mut PersistentCtx<'_, Self>, _: Change) -> Result<Balance, GrainError> {
        Err(GrainError::unimplemented("a counter only counts"))
    }
    fn get_balance(ctx: &mut PersistentCtx<'_, Self>, _: Empty) -> Result<Balance, GrainError> {
        Ok(Balance {
            amount: ctx.balance,
            events: ctx.next_index(),
        })
    }
}

/// Runs the workload: `[REQUESTS (one grain), GRAINS, REQUESTS PER GRAIN (many grains)]`.
pub fn run(p: &[u64]) -> RunResult {
    let [one, grains, per_grain] = params("persistent-grains", p)?;
    if one == 0 || grains == 0 || per_grain == 0 {
        return Err("persistent-grains: every size must be positive".into());
    }
    // Unique per run: journals in a PostgreSQL database outlive the run.
    let tag = format!(
        "pgbench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let mut out = Vec::new();
    out.extend(measure(
        "memory",
        &tag,
        &|_| Ok(Arc::new(InMemoryProvider::new())),
        one,
        grains,
        per_grain,
    )?);

    let dir = std::env::temp_dir().join(format!("protoactor-bench-{tag}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("temp dir {}: {e}", dir.display()))?;
    let path = dir.join("grains.db");
    let sqlite = measure(
        "sqlite",
        &tag,
        &|_| {
            SqliteProvider::open(&path)
                .map(|p| Arc::new(p) as Arc<dyn Provider>)
                .map_err(|e| format!("open SQLite {}: {e}", path.display()))
        },
        one,
        grains,
        per_grain,
    );
    let _ = std::fs::remove_dir_all(&dir);
    out.extend(sqlite?);

    if let Ok(url) = std::env::var("PROTOACTOR_POSTGRES_URL") {
        out.extend(measure(
            "postgres",
            &tag,
            &|s| {
                s.runtime()
                    .block_on(PostgresProvider::connect(&url))
                    .map(|p| Arc::new(p) as Arc<dyn Provider>)
                    .map_err(|e| format!("connect to PostgreSQL: {e}"))
            },
            one,
            grains,
            per_grain,
        )?);
    } else {
        eprintln!("persistent-grains: postgres rows skipped (PROTOACTOR_POSTGRES_URL is not set)");
    }
    Ok(out)
}

type Open<'a> = dyn Fn(&ActorSystem) -> Result<Arc<dyn Provider>, String> + 'a;

fn measure(
    label: &str,
    tag: &str,
    open: &Open<'_>,
    one: u64,
    grains: u64,
    per_grain: u64,
) -> Result<Vec<Metric>, String> {
    let system = ActorSystem::new();
    let r = (|| {
        let provider = open(&system)?;
        let remote =
            Remote::start(&system, RemoteConfig::local()).map_err(|e| format!("remote: {e:?}"))?;
        register_types(remote.serialization());
        let config = ClusterConfig::new(
            "persistent-grains",
            TestProvider::new(&InMemAgent::new()),
            DistHashIdentityLookup::new(),
        )
        .with_kind(account_persistent_kind(
            GrainStore::new(provider.clone()),
            Counter::default,
        ));
        let cluster =
            Cluster::start_member(&system, &remote, config).map_err(|e| format!("cluster: {e}"))?;
        let mut out = Vec::new();

        let one_id = format!("{tag}-{label}-one");
        let client = AccountClient::new(&cluster, one_id.as_str());
        client
            .get_balance_blocking(Empty {})
            .map_err(|e| format!("{label}: activate: {e}"))?;
        let rt = system.runtime().clone();
        let t = Instant::now();
        let last = rt.block_on(async {
            let mut last = None;
            for _ in 0..one {
                last = Some(
                    client
                        .deposit(Change {
                            amount: 1,
                            op_id: 0,
                        })
                        .await,
                );
            }
            last
        });
        let elapsed = t.elapsed();
        match last {
            Some(Ok(b)) if b.amount == one as i64 => {}
            other => return Err(format!("{label}: one grain ended with {other:?}")),
        }
        out.push(Metric::rate(
            &format!("persistent-grains:{label}"),
            one,
            elapsed,
        ));

        let clients: Vec<AccountClient> = (0..grains)
            .map(|i| AccountClient::new(&cluster, format!("{tag}-{label}-{i}")))
            .collect();
        for c in &clients {
            c.get_balance_blocking(Empty {})
                .map_err(|e| format!("{label}: activate {}: {e}", c.identity()))?;
        }
        let t = Instant::now();
        let results = rt.block_on(async {
            let tasks: Vec<_> = clients
                .iter()
                .cloned()
                .map(|c| {
                    tokio::spawn(async move {
                        let mut last = None;
                        for _ in 0..per_grain {
                            last = Some(
                                c.deposit(Change {
                                    amount: 1,
                                    op_id: 0,
                                })
                                .await,
                            );
                        }
                        last
                    })
                })
                .collect();
            let mut results = Vec::with_capacity(tasks.len());
            for t in tasks {
                results.push(t.await);
            }
            results
        });
        let elapsed = t.elapsed();
        for r in results {
            match r {
                Ok(Some(Ok(b))) if b.amount == per_grain as i64 => {}
                other => return Err(format!("{label}: a grain ended with {other:?}")),
            }
        }
        out.push(Metric::rate(
            &format!("persistent-grains-many:{label}"),
            grains * per_grain,
            elapsed,
        ));

        cluster.shutdown_blocking(false);
        // Leave nothing behind in a database that outlives the run.
        let names = std::iter::once(one_id).chain(clients.iter().map(|c| c.identity().to_string()));
        for id in names {
            let name = protoactor_cluster::persistent::journal_name(ACCOUNT_KIND, &id);
            rt.block_on(provider.delete_events(&name, i64::MAX as u64))
                .map_err(|e| format!("{label}: delete {name}: {e}"))?;
        }
        Ok::<_, String>(out)
    })();
    system.shutdown();
    r
}
