//! Smoke tests of the examples: the package's binaries, which `cargo test` builds for this
//! test, are run with small inputs and their key output lines checked.

use std::process::Command;
use std::time::Duration;

use protoactor_testkit::process::{run_to_end, ChildProcess};

/// Generous bound so a stuck example fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(300);

/// An example binary of this package (cargo builds them for its tests).
fn example(name: &str) -> Command {
    Command::new(match name {
        "remote_node1" => env!("CARGO_BIN_EXE_remote_node1"),
        "remote_node2" => env!("CARGO_BIN_EXE_remote_node2"),
        "remote_benchmark" => env!("CARGO_BIN_EXE_remote_benchmark"),
        other => panic!("no example {other}"),
    })
}

fn lines_with<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.starts_with(prefix)).collect()
}

fn check_benchmark_output(out: &str, progress: &[&str]) {
    assert!(out.lines().any(|l| l == "Starting to send"), "{out}");
    for p in progress {
        assert!(out.lines().any(|l| l == *p), "no progress line {p}:\n{out}");
    }
    assert_eq!(lines_with(out, "Elapsed ").len(), 1, "{out}");
    let rate = lines_with(out, "Msg per sec ");
    assert_eq!(rate.len(), 1, "{out}");
    let n: u64 = rate[0]["Msg per sec ".len()..]
        .trim()
        .parse()
        .expect("a number");
    assert!(n > 0, "{out}");
}

#[test]
fn remote_benchmark_runs_in_process() {
    let mut cmd = example("remote_benchmark");
    cmd.args(["--messages", "100000", "--in-process"]);
    let out = run_to_end("remote_benchmark --in-process", cmd, LIMIT);
    // Progress every 50,000 Pongs: each line means that many arrived.
    check_benchmark_output(&out, &["50000", "100000"]);
}

#[test]
fn remote_benchmark_runs_as_two_processes() {
    // Without --in-process it starts itself again as node 2.
    let mut cmd = example("remote_benchmark");
    cmd.args(["--messages", "10000"]);
    let out = run_to_end("remote_benchmark", cmd, LIMIT);
    check_benchmark_output(&out, &[]);
}

#[test]
fn remote_node1_and_node2_talk() {
    // Port 0: node 2 prints the port it got.
    let mut cmd = example("remote_node2");
    cmd.arg("0");
    let mut node2 = ChildProcess::spawn_all_lines("remote_node2", cmd);
    let first = node2.next_line("node 2's first line", LIMIT);
    let address = first
        .strip_prefix("node2: listening on ")
        .and_then(|r| r.strip_suffix(" with kind `hello`"))
        .unwrap_or_else(|| panic!("unexpected first line of node 2: {first}"))
        .to_string();

    let mut node1 = example("remote_node1");
    node1.arg(&address);
    let out = run_to_end("remote_node1", node1, LIMIT);
    let pid = format!("{address}/activator/Remote$remote");
    assert!(
        out.lines()
            .any(|l| l == format!("node1: spawned {pid} on node 2")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l == "node1: Hello from remote node"),
        "{out}"
    );
    let got = lines_with(&out, "node1: got ");
    assert_eq!(got.len(), 3, "{out}");
    for i in 0..3 {
        let want = format!("node1: got echo #{i} (echoed by node2) from Some(\"{pid}\")");
        assert!(got.contains(&want.as_str()), "missing {want}:\n{out}");
    }

    // Node 2 saw the three Echo messages; closing its stdin stops it.
    let echoes: Vec<String> = (0..3)
        .map(|_| {
            node2.wait_for_line("node2: got Echo", LIMIT, |l| {
                l.starts_with("node2: got Echo ")
            })
        })
        .collect();
    for i in 0..3 {
        assert!(
            echoes.iter().any(|l| l.contains(&format!("\"echo #{i}\""))),
            "{echoes:?}"
        );
    }
    let status = node2.stop(LIMIT);
    assert!(status.success(), "node 2 exited with {status}");
}
