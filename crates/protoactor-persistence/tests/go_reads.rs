//! A Go program reads what a Rust persistent actor stored in PostgreSQL: it resolves each
//! stored type name to a protobuf type and unmarshals the bytes with Go's protobuf library
//! (`go/reader`). Needs PostgreSQL (`PROTOACTOR_POSTGRES_URL`) and `go`; skipped loudly
//! without them, unless `PROTOACTOR_POSTGRES=required` / `PROTOACTOR_INTEROP=required`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use protoactor::prelude::*;
use protoactor_testkit::go;
use protoactor_testkit::process::run_to_end;

#[test]
fn go_decodes_events_and_snapshots_written_by_rust() {
    let Some(pg) = PostgresFixture::from_env() else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("go/reader");
    let Some(reader) = go::go_binary(&dir, ".", "persistence-reader", "Go reads the journal")
    else {
        return;
    };

    let name = unique("go-reads");
    let system = ActorSystem::new();
    let provider = pg.open(&system);
    let pid = system
        .root()
        .spawn_named(&counter_props(provider, 3), &name)
        .unwrap();
    for n in 1..=4 {
        add(&system, &pid, n).unwrap();
    }
    ask::<Result<i64, String>>(&system, &pid, ResetCmd).unwrap();
    get(&system, &pid);
    system.shutdown();

    let mut cmd = Command::new(reader);
    cmd.args([&pg.url, &name]);
    let stdout = run_to_end("Go reader", cmd, Duration::from_secs(120));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        vec![
            "event 0 test.Added amount=1 seq=0",
            "event 1 test.Added amount=2 seq=1",
            "event 2 test.Added amount=3 seq=2",
            "event 3 test.Added amount=4 seq=3",
            "event 4 test.Reset seq=4",
            "snapshot 3 test.CounterState value=6",
        ]
    );
}
