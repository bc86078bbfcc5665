//! `cluster_automanaged` as two processes (the automanaged provider: each member polls the
//! other's `/_health` endpoint): both agree on which member hosts each grain.

use std::process::Command;
use std::time::Duration;

use protoactor_testkit::ports::free_port;
use protoactor_testkit::process::ChildProcess;

/// Longest wait for the members to see each other.
const TOPOLOGY: Duration = Duration::from_secs(60);

#[test]
fn the_two_process_example_agrees_on_the_hosting_members() {
    let ports = [free_port(), free_port()];
    let peers = format!("{},{}", ports[0], ports[1]);
    let mut children: Vec<ChildProcess> = ports
        .iter()
        .map(|p| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_cluster_automanaged"));
            cmd.args([p.to_string(), peers.clone()]);
            ChildProcess::spawn_all_lines(&format!("example on {p}"), cmd)
        })
        .collect();
    // Each prints its address, then the greetings once it sees both members.
    let mut addresses = Vec::new();
    let mut greetings = Vec::new();
    for child in &mut children {
        let mut mine = std::collections::BTreeMap::new();
        loop {
            let line = child.next_line("the example's output", TOPOLOGY);
            if let Some(rest) = line.strip_prefix("member ") {
                addresses.push(rest.split(' ').next().unwrap().to_string());
            } else if let Some((who, greeting)) = line.split_once(": Hello from grain ") {
                mine.insert(who.to_string(), greeting.to_string());
            } else if line == "press Enter to leave" {
                break;
            }
        }
        assert_eq!(mine.len(), 4, "four greetings");
        greetings.push(mine);
    }
    assert_eq!(
        greetings[0], greetings[1],
        "both processes reach the same grains"
    );
    for g in greetings[0].values() {
        let host = g.rsplit(' ').next().unwrap();
        assert!(
            addresses.iter().any(|a| a == host),
            "{g} is hosted on neither member"
        );
    }
    for child in &mut children {
        child.send_line("");
    }
    for child in &mut children {
        let status = child.wait_exit(TOPOLOGY);
        assert!(status.success(), "the example exited with {status}");
        assert!(child.remaining_lines().any(|l| l == "left"));
    }
}
