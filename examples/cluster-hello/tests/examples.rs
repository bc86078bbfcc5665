//! Smoke test of the example: `cluster_basic` (built by cargo for this test) runs and prints
//! one greeting per identity.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Generous bound so a stuck example fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(300);

fn example(name: &str) -> PathBuf {
    assert_eq!(name, "cluster_basic");
    env!("CARGO_BIN_EXE_cluster_basic").into()
}

#[test]
fn cluster_basic_greets_from_the_hosting_members() {
    let mut child = Command::new(example("cluster_basic"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("example starts");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("cluster_basic did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success(), "cluster_basic failed: {}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let members_line = stdout.lines().next().expect("a members line");
    let members: Vec<&str> = members_line
        .trim_start_matches("members: ")
        .split(" and ")
        .collect();
    assert_eq!(members.len(), 2, "{stdout}");
    for identity in ["alice", "bob", "carol", "dave"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{identity}: ")))
            .unwrap_or_else(|| panic!("no greeting for {identity} in:\n{stdout}"));
        let host = line.rsplit(' ').next().unwrap();
        assert!(
            line.contains(&format!("Hello from grain {identity} on member "))
                && members.contains(&host),
            "{line}"
        );
    }
}
