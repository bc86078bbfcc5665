//! Smoke tests of the examples: the package's binaries, which `cargo test` builds for this
//! test, are run with small inputs and their key output lines checked.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous bound so a stuck example fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(300);

/// The path of an example binary: cargo builds this package's binaries for its tests.
fn example(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "remote_node1" => env!("CARGO_BIN_EXE_remote_node1"),
        "remote_node2" => env!("CARGO_BIN_EXE_remote_node2"),
        "remote_benchmark" => env!("CARGO_BIN_EXE_remote_benchmark"),
        other => panic!("no example {other}"),
    })
}

/// Waits for `child` to exit within [`LIMIT`], killing it otherwise; returns its stdout.
fn finish(mut child: Child, name: &str) -> String {
    let mut out = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = reader.join().expect("reader");
    assert!(
        status.success(),
        "{name} failed ({status}); stdout:\n{stdout}"
    );
    stdout
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
    let child = Command::new(example("remote_benchmark"))
        .args(["--messages", "100000", "--in-process"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    let out = finish(child, "remote_benchmark --in-process");
    // Progress every 50,000 Pongs: each line means that many arrived.
    check_benchmark_output(&out, &["50000", "100000"]);
}

#[test]
fn remote_benchmark_runs_as_two_processes() {
    // Without --in-process it starts itself again as node 2.
    let child = Command::new(example("remote_benchmark"))
        .args(["--messages", "10000"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    let out = finish(child, "remote_benchmark");
    check_benchmark_output(&out, &[]);
}

#[test]
fn remote_node1_and_node2_talk() {
    // Port 0: node 2 prints the port it got.
    let mut node2 = Command::new(example("remote_node2"))
        .arg("0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node 2 starts");
    let stdout = node2.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let first = match rx.recv_timeout(LIMIT) {
        Ok(l) => l,
        Err(_) => {
            let _ = node2.kill();
            panic!("node 2 printed nothing");
        }
    };
    let address = first
        .strip_prefix("node2: listening on ")
        .and_then(|r| r.strip_suffix(" with kind `hello`"))
        .unwrap_or_else(|| panic!("unexpected first line of node 2: {first}"))
        .to_string();

    let node1 = Command::new(example("remote_node1"))
        .arg(&address)
        .stdout(Stdio::piped())
        .spawn()
        .expect("node 1 starts");
    let out = finish(node1, "remote_node1");
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
    let mut echoes = Vec::new();
    while echoes.len() < 3 {
        match rx.recv_timeout(LIMIT) {
            Ok(l) if l.starts_with("node2: got Echo ") => echoes.push(l),
            Ok(_) => {}
            Err(_) => {
                let _ = node2.kill();
                panic!("node 2 reported {echoes:?} only");
            }
        }
    }
    for i in 0..3 {
        assert!(
            echoes.iter().any(|l| l.contains(&format!("\"echo #{i}\""))),
            "{echoes:?}"
        );
    }
    let mut stdin = node2.stdin.take().expect("piped");
    let _ = stdin.flush();
    drop(stdin);
    let start = Instant::now();
    loop {
        if let Some(status) = node2.try_wait().expect("wait") {
            assert!(status.success(), "node 2 exited with {status}");
            break;
        }
        if start.elapsed() > LIMIT {
            let _ = node2.kill();
            panic!("node 2 did not stop after its stdin closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().expect("reader");
}
