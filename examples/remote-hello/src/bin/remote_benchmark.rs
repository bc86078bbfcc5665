//! The remote benchmark of protoactor-go, in Rust: node 2 hosts kind `echo`; node 1
//! remote-spawns it, then sends `Ping`s from its root; every `Ping` makes node 2 send a
//! `Pong` to node 1's counting actor. Rate = 2 × messages / elapsed (order is kept).
//!
//! One command starts both nodes, as two processes (this program starts itself again as
//! node 2):
//! ```text
//! cargo run --release -p protoactor-example-remote-hello --bin remote_benchmark [-- --messages N] [--in-process]
//! ```
//! `--in-process` runs both nodes in this process instead (two actor systems, two ports).

use protoactor_example_remote_hello::messages;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use messages::{Ping, Pong, Start, StartRemote};
use protoactor::prelude::*;
use protoactor::Config;
use protoactor_remote::{PidExt, Remote, RemoteConfig, Serialization};

fn serialization() -> Serialization {
    let s = Serialization::new();
    s.register::<Ping>();
    s.register::<Pong>();
    s.register::<Start>();
    s.register::<StartRemote>();
    s
}

/// The `echo` kind: remembers who to answer, then answers every Ping with a Pong.
struct Echo {
    sender: Option<Pid>,
}

impl Actor for Echo {
    fn receive(&mut self, ctx: &mut Context) {
        if ctx.message_as::<Ping>().is_some() {
            if let Some(s) = &self.sender {
                ctx.send(s, Pong {});
            }
        } else if let Some(m) = ctx.message_as::<StartRemote>() {
            self.sender = m.sender.as_ref().map(|p| p.to_pid());
            ctx.respond(Start {});
        }
    }
}

/// Counts Pongs on node 1, printing progress every 50,000.
struct Counter {
    seen: u64,
    expected: u64,
    done: mpsc::Sender<()>,
}

impl Actor for Counter {
    fn receive(&mut self, ctx: &mut Context) {
        if ctx.message_as::<Pong>().is_some() {
            self.seen += 1;
            if self.seen.is_multiple_of(50_000) {
                println!("{}", self.seen);
            }
            if self.seen == self.expected {
                let _ = self.done.send(());
            }
        }
    }
}

fn start_node2(port: u16) -> (ActorSystem, std::sync::Arc<Remote>) {
    let system = ActorSystem::new();
    let remote = Remote::start(
        &system,
        RemoteConfig::new("127.0.0.1", port)
            .with_serialization(serialization())
            .with_kind(
                "echo",
                Props::from_producer(|| Echo { sender: None })
                    .with_mailbox(MailboxConfig::unbounded()),
            ),
    )
    .expect("node 2 starts");
    (system, remote)
}

fn run_node1(node2: &str, messages: u64) {
    let system = ActorSystem::with_config(Config::default());
    let remote = Remote::start(
        &system,
        RemoteConfig::new("127.0.0.1", 0).with_serialization(serialization()),
    )
    .expect("node 1 starts");
    let timeout = Duration::from_secs(30);
    let echo = remote
        .spawn_named_blocking(node2, "remote", "echo", timeout)
        .expect("node 2 spawns `echo`");

    let (done_tx, done_rx) = mpsc::channel::<()>();
    let counter = system.root().spawn(
        &Props::from_producer(move || Counter {
            seen: 0,
            expected: messages,
            done: done_tx.clone(),
        })
        .with_mailbox(MailboxConfig::unbounded()),
    );
    system
        .root()
        .request_future(
            &echo,
            StartRemote {
                sender: Some(counter.to_proto()),
            },
            timeout,
        )
        .result_as::<Start>()
        .expect("node 2 answers Start");

    println!("Starting to send");
    let root = system.root();
    let start = Instant::now();
    for _ in 0..messages {
        root.send(&echo, Ping {});
    }
    done_rx
        .recv_timeout(Duration::from_secs(600))
        .expect("every Pong arrives");
    let elapsed = start.elapsed();
    println!("Elapsed {elapsed:?}");
    let rate = (messages * 2) as f64 / elapsed.as_secs_f64();
    println!("Msg per sec {}", rate as u64);
    remote.shutdown();
    system.shutdown();
}

fn main() {
    // Framework logs go to stderr; RUST_LOG picks the level (`info` when unset).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().collect();
    let messages = args
        .iter()
        .position(|a| a == "--messages")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000u64);

    if args.iter().any(|a| a == "--node2") {
        let (system, remote) = start_node2(0);
        println!("READY {}", remote.address());
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        remote.shutdown();
        system.shutdown();
        return;
    }
    if args.iter().any(|a| a == "--in-process") {
        let (system, remote) = start_node2(0);
        run_node1(remote.address(), messages);
        remote.shutdown();
        system.shutdown();
        return;
    }
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .arg("--node2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node 2 starts");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let node2 = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(a) = l.strip_prefix("READY ") {
                    break a.trim().to_string();
                }
            }
            _ => panic!("node 2 did not start"),
        }
    };
    run_node1(&node2, messages);
    drop(child.stdin.take());
    let _ = child.wait();
}
