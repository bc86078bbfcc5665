//! `cluster_basic` on a real etcd (the `etcd` feature), in one process and as one member per
//! process. Needs `PROTOACTOR_ETCD_ENDPOINTS` (`export PROTOACTOR_ETCD_ENDPOINTS="$(scripts/start-etcd.sh)"`);
//! skips loudly without it, fails instead when `PROTOACTOR_ETCD=required`.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use protoactor_testkit::process::{run_to_end, ChildProcess};
use protoactor_testkit::services::etcd_endpoints;

/// Longest wait for the members to see each other (and for one run of the example).
const TOPOLOGY: Duration = Duration::from_secs(60);

#[test]
fn the_example_cluster_basic_runs_on_etcd_in_one_process_and_in_two() {
    let Some(ep) = etcd_endpoints() else { return };
    let bin = env!("CARGO_BIN_EXE_cluster_basic");

    // Two members in one process, through etcd.
    let mut one = Command::new(bin);
    one.env("PROTOACTOR_ETCD_ENDPOINTS", &ep);
    let stdout = run_to_end("cluster_basic", one, TOPOLOGY);
    let members: Vec<&str> = stdout
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("members: ")
        .split(" and ")
        .collect();
    assert!(stdout.contains("provider: etcd"), "{stdout}");
    let hosts: BTreeSet<&str> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|id| {
            let line = stdout
                .lines()
                .find(|l| l.starts_with(&format!("{id}: Hello from grain {id} on member ")))
                .unwrap_or_else(|| panic!("no greeting for {id}: {stdout}"));
            line.rsplit(' ').next().unwrap()
        })
        .collect();
    assert!(hosts.iter().all(|h| members.contains(h)), "{stdout}");

    // One member per process (the README's two-terminal version).
    let spawn = |label: &str| {
        let mut cmd = Command::new(bin);
        cmd.args(["member", "2"])
            .env("PROTOACTOR_ETCD_ENDPOINTS", &ep);
        ChildProcess::spawn_all_lines(label, cmd)
    };
    // Every line up to the first that starts with `until`.
    let read_until = |p: &mut ChildProcess, until: &str| -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = p.next_line(until, TOPOLOGY);
            let done = line.starts_with(until);
            seen.push(line);
            if done {
                return seen;
            }
        }
    };
    let mut a = spawn("a");
    let mut b = spawn("b");
    let a_lines = read_until(&mut a, "press Enter");
    let b_lines = read_until(&mut b, "press Enter");
    // Both processes reach the same activation of each grain.
    let greetings = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.contains("Hello from grain"))
            .cloned()
            .collect()
    };
    assert_eq!(greetings(&a_lines).len(), 4, "{a_lines:?}");
    assert_eq!(greetings(&a_lines), greetings(&b_lines));
    a.close_stdin();
    b.close_stdin();
    assert!(a.wait_exit(TOPOLOGY).success() && b.wait_exit(TOPOLOGY).success());
    assert!(read_until(&mut a, "left").last().unwrap() == "left");
}
