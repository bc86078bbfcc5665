//! Smoke test of the example: `cluster_basic` (built by cargo for this test) runs and prints
//! one greeting per identity.

use std::process::Command;
use std::time::Duration;

use protoactor_testkit::process::run_to_end;

/// Generous bound so a stuck example fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(300);

#[test]
fn cluster_basic_greets_from_the_hosting_members() {
    let bin = env!("CARGO_BIN_EXE_cluster_basic");
    let stdout = run_to_end("cluster_basic", Command::new(bin), LIMIT);
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
