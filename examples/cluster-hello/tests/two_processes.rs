//! `cluster_automanaged` as two processes (the automanaged provider: each member polls the
//! other's `/_health` endpoint): both agree on which member hosts each grain.

use std::time::Duration;

/// Longest wait for the members to see each other.
const TOPOLOGY: Duration = Duration::from_secs(60);

/// A loopback port free right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The binary cargo builds for this package's tests.
fn example(name: &str) -> std::path::PathBuf {
    assert_eq!(name, "cluster_automanaged");
    env!("CARGO_BIN_EXE_cluster_automanaged").into()
}

#[test]
fn the_two_process_example_agrees_on_the_hosting_members() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    let ports = [free_port(), free_port()];
    let peers = format!("{},{}", ports[0], ports[1]);
    let mut children: Vec<_> = ports
        .iter()
        .map(|p| {
            let mut child = Command::new(example("cluster_automanaged"))
                .args([p.to_string(), peers.clone()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("example starts");
            let (tx, rx) = std::sync::mpsc::channel();
            let out = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            (child, rx)
        })
        .collect();
    // Each prints its address, then the greetings once it sees both members.
    let mut addresses = Vec::new();
    let mut greetings = Vec::new();
    for (_, rx) in &children {
        let mut mine = std::collections::BTreeMap::new();
        loop {
            let line = rx.recv_timeout(TOPOLOGY).expect("the example prints");
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
    for (child, _) in &mut children {
        writeln!(child.stdin.as_mut().unwrap()).unwrap();
    }
    for (mut child, rx) in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "the example exited with {status}");
        assert!(rx.iter().any(|l| l == "left"));
    }
}
