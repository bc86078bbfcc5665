//! A Go program reads a persistent grain's journal: the persistent `counter_service` grain
//! journals in PostgreSQL, and the persistence crate's Go reader
//! (crates/protoactor-persistence/go/reader) resolves each stored type name and unmarshals
//! the bytes with Go's protobuf library, as for any protoactor-persistence journal. Needs
//! PostgreSQL (`PROTOACTOR_POSTGRES_URL`) and `go`; skipped loudly without them, unless
//! `PROTOACTOR_POSTGRES=required` / `PROTOACTOR_INTEROP=required`.

mod grain_impls;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use grain_impls::grainstest::*;
use grain_impls::PersistentCounter;
use protoactor::prelude::*;
use protoactor_cluster::persistent::{journal_name, GrainStore, Provider};
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{Cluster, ClusterConfig, DistHashIdentityLookup};
use protoactor_persistence::PostgresProvider;
use protoactor_remote::{Remote, RemoteConfig};
use protoactor_testkit::process::run_to_end;
use protoactor_testkit::{go, services};

#[test]
fn go_decodes_the_events_and_snapshot_of_a_persistent_grain() {
    let Some(url) = services::postgres_url("Go reads a persistent grain's journal") else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protoactor-persistence/go/reader");
    let Some(reader) = go::go_binary(&dir, ".", "persistence-reader", "Go reads the journal")
    else {
        return;
    };

    let system = ActorSystem::new();
    let remote = Remote::start(&system, RemoteConfig::local()).expect("remote starts");
    register_types(remote.serialization());
    let pg: Arc<dyn Provider> = Arc::new(
        system
            .runtime()
            .block_on(PostgresProvider::connect(&url))
            .expect("PostgreSQL"),
    );
    let config = ClusterConfig::new(
        "go-reads",
        TestProvider::new(&InMemAgent::new()),
        DistHashIdentityLookup::new(),
    )
    .with_kind(counter_service_persistent_kind(
        GrainStore::new(pg).snapshot_every(2),
        PersistentCounter::default,
    ));
    let cluster = Cluster::start_member(&system, &remote, config).expect("member starts");
    // Journals in the database outlive the run: a fresh identity each run.
    let id = format!(
        "go-reads-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let counter = CounterServiceClient::new(&cluster, id.as_str());
    for n in [3, 4, 5] {
        counter.add_blocking(AddRequest { amount: n }).expect("add");
    }
    cluster.shutdown_blocking(true);
    remote.shutdown();
    system.shutdown();

    let mut cmd = Command::new(reader);
    cmd.args([url.as_str(), &journal_name(COUNTER_SERVICE_KIND, &id)]);
    let stdout = run_to_end("Go reader", cmd, Duration::from_secs(120));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "event 0 grainstest.AddRequest amount=3",
            "event 1 grainstest.AddRequest amount=4",
            "event 2 grainstest.AddRequest amount=5",
            "snapshot 2 grainstest.CountResponse value=7",
        ]
    );
}
