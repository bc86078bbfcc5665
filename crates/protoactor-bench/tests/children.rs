//! The harness's child path, end to end: every Rust implementation runs small workloads
//! through the hidden `__run` subcommand and reports well-formed results (each workload
//! checks its own sums, counts and order, and exits non-zero otherwise). No timing checks.

use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_protoactor-bench"))
        .args(args)
        .output()
        .expect("the benchmark binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_rust_implementation_runs_small_workloads() {
    let workloads: &[&[&str]] = &[
        &["in-process", "2", "200", "100"],
        &["in-process-outside", "2", "200", "100"],
        &["spawn", "100", "10"],
        &["spawn-root", "100", "10"],
        &["savina-ping-pong", "50"],
        &["savina-counting", "500"],
        &["savina-counting-outside", "500"],
        &["savina-fork-join", "4", "20"],
        &["savina-fork-join-outside", "4", "20"],
        &["savina-thread-ring", "5", "50"],
        &["savina-big", "4", "20"],
        &["savina-chameneos", "4", "50"],
        &["skynet", "100", "10"],
        &["request", "20"],
        &["idle-memory", "20"],
    ];
    for imp in ["protoactor-rs", "kameo", "ractor", "actix"] {
        for w in workloads {
            let mut args = vec!["__run", imp];
            args.extend_from_slice(w);
            let (ok, out, err) = run(&args);
            assert!(ok, "{imp} {w:?} failed: {err}");
            let results: Vec<&str> = out.lines().filter(|l| l.starts_with("RESULT ")).collect();
            assert!(
                !results.is_empty(),
                "{imp} {w:?}: no RESULT line in {out:?}"
            );
            for r in &results {
                let f: Vec<&str> = r.split_whitespace().collect();
                assert_eq!(f.len(), 4, "{r}");
                assert!(
                    f[1].starts_with(w[0]),
                    "{imp}: metric {} for {}",
                    f[1],
                    w[0]
                );
                let v: f64 = f[2].parse().expect("a number");
                assert!(v.is_finite() && v >= 0.0, "{r}");
            }
            assert!(out.lines().any(|l| l.starts_with("RSS ")), "{out}");
            if w[0] == "idle-memory" {
                // Both readings, as protoactor-go reports them: the live heap grew.
                let heap = results
                    .iter()
                    .find_map(|r| r.strip_prefix("RESULT idle-memory:live-heap "))
                    .unwrap_or_else(|| panic!("{imp}: no live-heap row in {out:?}"));
                let v: f64 = heap.split_whitespace().next().unwrap().parse().unwrap();
                assert!(v > 0.0, "{imp}: live heap per actor {v}");
            }
        }
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let (ok, _, err) = run(&["__run", "protoactor-rs", "spawn", "120", "10"]);
    assert!(!ok);
    assert!(err.contains("power of the fan-out"), "{err}");
    let (ok, _, err) = run(&["__run", "akka", "spawn", "100", "10"]);
    assert!(!ok);
    assert!(err.contains("unknown implementation"), "{err}");
    let (ok, _, err) = run(&["__run", "kameo", "savina-big"]);
    assert!(!ok);
    assert!(err.contains("needs 2 size parameters"), "{err}");
    let (ok, _, err) = run(&["__run", "ractor", "request", "x"]);
    assert!(!ok);
    assert!(err.contains("whole numbers"), "{err}");
    let (ok, _, err) = run(&["nope"]);
    assert!(!ok);
    assert!(err.contains("unknown workload"), "{err}");
}

#[test]
fn protoactor_rs_runs_the_persistence_workload() {
    // Tiny sizes; PostgreSQL rows too when PROTOACTOR_POSTGRES_URL is set (CI sets it).
    let (ok, out, err) = run(&["__run", "protoactor-rs", "persistence", "200", "10"]);
    assert!(ok, "persistence failed: {err}");
    let metrics: Vec<(&str, f64, &str)> = out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["RESULT", name, v, unit] => Some((*name, v.parse().expect("a number"), *unit)),
                _ => None,
            }
        })
        .collect();
    let mut expected = vec![];
    let mut providers = vec!["memory", "sqlite"];
    if std::env::var_os("PROTOACTOR_POSTGRES_URL").is_some() {
        providers.push("postgres");
    }
    for p in &providers {
        for row in [
            "persistence",
            "persistence-batched",
            "persistence-100-actors",
            "persistence-recovery",
        ] {
            expected.push(format!("{row}:{p}"));
        }
    }
    let names: Vec<&str> = metrics.iter().map(|m| m.0).collect();
    assert_eq!(names.len(), expected.len(), "{out}");
    for e in &expected {
        assert!(names.contains(&e.as_str()), "{e} missing in {out}");
    }
    for (name, v, unit) in &metrics {
        assert!(v.is_finite() && *v > 0.0, "{name} {v}");
        assert_eq!(*unit, "events/s");
    }

    // Bad sizes are a clear error; the actor crates do not have the workload at all.
    let (ok, _, err) = run(&["__run", "protoactor-rs", "persistence", "150", "10"]);
    assert!(!ok);
    assert!(err.contains("multiple of 100"), "{err}");
    let (ok, _, err) = run(&["__run", "kameo", "persistence", "200", "10"]);
    assert!(!ok);
    assert!(err.contains("unknown workload"), "{err}");
}

#[test]
fn the_harness_leaves_implementations_without_persistence_out() {
    // protoactor-go is not selected here, so Go being required elsewhere must not fail this.
    let out = Command::new(env!("CARGO_BIN_EXE_protoactor-bench"))
        .args([
            "persistence",
            "--quick",
            "--only",
            "protoactor-rs,kameo,ractor,actix",
        ])
        .env_remove("PROTOACTOR_INTEROP")
        .output()
        .expect("the benchmark binary runs");
    // Rows measured while other processes ran are marked "(busy)" (a test run is never quiet).
    let table = String::from_utf8_lossy(&out.stdout).replace(" (busy)", "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{table}\n{err}");
    assert!(
        table.contains("| persistence:memory | protoactor-rs |"),
        "{table}"
    );
    assert!(
        table.contains("| persistence-recovery:sqlite | protoactor-rs |"),
        "{table}"
    );
    for imp in ["kameo", "ractor", "actix"] {
        assert!(!table.contains(imp), "{imp} in {table}");
        assert!(
            !err.contains(&format!("persistence round 1/1 {imp}")),
            "{err}"
        );
    }
}

#[test]
fn the_cluster_workload_runs_two_member_processes() {
    // Member 2 and the caller (member 1) as separate processes through the harness, the
    // quick sizes (1,000 identities); only protoactor-rs: the Go rows need `go` (CI runs
    // `all --quick` with it). The actor crates have no cluster and no rows.
    let out = Command::new(env!("CARGO_BIN_EXE_protoactor-bench"))
        .args(["cluster", "--quick", "--only", "protoactor-rs,kameo"])
        .env_remove("PROTOACTOR_INTEROP")
        .output()
        .expect("the benchmark binary runs");
    // Rows measured while other processes ran are marked "(busy)" (a test run is never quiet).
    let table = String::from_utf8_lossy(&out.stdout).replace(" (busy)", "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{table}\n{err}");
    for row in [
        "| cluster | protoactor-rs |",
        "| cluster:p50 | protoactor-rs |",
        "| cluster:p99 | protoactor-rs |",
        "| cluster-local:p50 | protoactor-rs |",
        "| cluster-local:p99 | protoactor-rs |",
    ] {
        assert!(table.contains(row), "{row} missing in {table}");
    }
    assert!(!table.contains("kameo"), "{table}");
    assert!(
        !table.contains("FAILED") && !err.contains("FAILED"),
        "{err}"
    );

    // Bad sizes are a clear error of the caller, not a hang.
    let (ok, _, err) = run(&[
        "__cluster-caller",
        "1",
        "127.0.0.1:1,127.0.0.1:2",
        "10",
        "10",
        "5",
        "10",
    ]);
    assert!(!ok);
    assert!(
        err.contains("more concurrent callers than requests"),
        "{err}"
    );
}
