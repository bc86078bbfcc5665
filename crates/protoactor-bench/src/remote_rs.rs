//! The `remote` workload's protoactor-rs nodes, each run as its own process (hidden
//! subcommands of this binary), mirroring `remote-server` / `remote-client` of `bench/go`:
//!
//! ```text
//! __remote-server PORT WIRE            node 2: kind "echo" answers Ping{seq} with Pong{seq}
//! __remote-client PORT PEER N WIRE     node 1: remote-spawns "echo" on PEER, sends N Pings
//! ```
//!
//! `WIRE` is `current` or `legacy2024` ([`WireVariant`]): protoactor-go @latest speaks the
//! 2024 protocol, so the Rust↔Go pairs run the legacy variant and Rust↔Rust the default.

use std::io::{Read, Write};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protoactor::prelude::*;
use protoactor::DeadLetterEvent;
use protoactor_remote::{Remote, RemoteConfig, RemoteDeliveryError, Serialization, WireVariant};

use crate::common::{proc_status_kb, RUN_TIMEOUT};

/// The messages of `bench/proto/bench.proto` (package `protoactor_bench`).
pub mod proto {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/protoactor_bench.rs"));
}
use proto::{Ping, Pong};

/// Mailbox size of node 2's echo and node 1's counter, as `bench/go` (`actor.Bounded(1000000)`).
const MAILBOX: usize = 1_000_000;

fn serialization() -> Serialization {
    let s = Serialization::new();
    s.register::<Ping>();
    s.register::<Pong>();
    s
}

/// Parses the `WIRE` argument.
pub fn wire_variant(s: &str) -> Result<WireVariant, String> {
    match s {
        "current" => Ok(WireVariant::Current),
        "legacy2024" => Ok(WireVariant::Legacy2024),
        other => Err(format!(
            "wire variant must be current or legacy2024, not {other:?}"
        )),
    }
}

fn port(s: &str) -> Result<u16, String> {
    s.parse().map_err(|_| format!("{s:?} is not a port number"))
}

/// Node 2: serves kind `echo` on 127.0.0.1:PORT, prints `READY`, and stops when stdin closes.
pub fn server_main(args: &[String]) -> Result<(), String> {
    let [p, wire] = args else {
        return Err("usage: __remote-server PORT current|legacy2024".into());
    };
    let (port, wire) = (port(p)?, wire_variant(wire)?);
    let (system, remote) = start_server(port, wire)?;
    println!("READY");
    let _ = std::io::stdout().flush();
    // The harness closes our stdin when the client is done.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    remote.shutdown();
    system.shutdown();
    Ok(())
}

/// Starts node 2's remote with kind `echo` on 127.0.0.1:`port` (0: a free port).
fn start_server(port: u16, wire: WireVariant) -> Result<(ActorSystem, Arc<Remote>), String> {
    let echo = Props::from_func(|ctx| {
        if let Some(p) = ctx.message_as::<Ping>() {
            let seq = p.seq;
            ctx.respond(Pong { seq });
        }
    })
    .with_mailbox(MailboxConfig::bounded(MAILBOX));
    let system = ActorSystem::new();
    let remote = Remote::start(
        &system,
        RemoteConfig::new("127.0.0.1", port)
            .with_serialization(serialization())
            .with_wire_variant(wire)
            .with_kind("echo", echo),
    )
    .map_err(|e| format!("node 2 cannot start remote on port {port}: {e}"))?;
    Ok((system, remote))
}

/// Node 1's Pong counter: checks the order and reports once all `n` arrived.
struct Counter {
    expect: i64,
    n: i64,
    error: Option<String>,
    done: Sender<Result<(), String>>,
}

impl Actor for Counter {
    fn receive(&mut self, ctx: &mut Context) {
        let Some(pong) = ctx.message_as::<Pong>() else {
            return;
        };
        if pong.seq != self.expect && self.error.is_none() {
            self.error = Some(format!(
                "pong {} arrived when {} was expected",
                pong.seq, self.expect
            ));
        }
        self.expect += 1;
        if self.expect == self.n {
            let _ = self.done.send(self.error.take().map_or(Ok(()), Err));
        }
    }
}

/// Node 1: remote-spawns `echo` on PEER, sends N Pings from the root with the counter as
/// sender, and prints `RESULT remote <2N/s> msg/s` and `RSS <kb>`.
pub fn client_main(args: &[String]) -> Result<(), String> {
    let [p, peer, n, wire] = args else {
        return Err("usage: __remote-client PORT PEER_HOST:PORT N current|legacy2024".into());
    };
    let (port, wire) = (port(p)?, wire_variant(wire)?);
    let n: i64 = n
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or(format!("N must be a positive number, not {n:?}"))?;
    let system = ActorSystem::new();
    let remote = Remote::start(
        &system,
        RemoteConfig::new("127.0.0.1", port)
            .with_serialization(serialization())
            .with_wire_variant(wire),
    )
    .map_err(|e| format!("node 1 cannot start remote on port {port}: {e}"))?;
    let result = run_client(&system, &remote, peer, n);
    if let Ok(rate) = &result {
        println!("RESULT remote {rate} msg/s");
        println!("RSS {}", proc_status_kb("VmHWM"));
        let _ = std::io::stdout().flush();
    }
    remote.shutdown();
    system.shutdown();
    result.map(|_| ())
}

fn run_client(system: &ActorSystem, remote: &Remote, peer: &str, n: i64) -> Result<f64, String> {
    let (done_tx, done_rx) = channel();
    let tx = done_tx.clone();
    let counter = system.root().spawn(
        &Props::from_producer(move || Counter {
            expect: 0,
            n,
            error: None,
            done: tx.clone(),
        })
        .with_mailbox(MailboxConfig::bounded(MAILBOX)),
    );
    // Node 2 may still be binding: retry as the Go client does.
    let mut tries = 0;
    let echo = loop {
        match remote.spawn_named_blocking(peer, "echo", "echo", Duration::from_secs(5)) {
            Ok(pid) => break pid,
            Err(e) if tries == 20 => return Err(format!("cannot spawn echo on {peer}: {e}")),
            Err(_) => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    };
    // A lost Ping or Pong would otherwise show up only as a timeout.
    let lost = done_tx.clone();
    let _dead = system
        .event_stream()
        .subscribe_to::<DeadLetterEvent, _>(move |d| {
            let _ = lost.send(Err(format!(
                "a {} to {} went to dead letters",
                d.message.type_name(),
                d.pid
            )));
        });
    let undelivered = done_tx;
    let _failed = system
        .event_stream()
        .subscribe_to::<RemoteDeliveryError, _>(move |e| {
            let _ = undelivered.send(Err(format!("delivery to {} failed: {}", e.peer, e.error)));
        });
    let root = system.root();
    let start = Instant::now();
    for seq in 0..n {
        root.request_with_custom_sender(&echo, Ping { seq }, &counter);
    }
    match done_rx.recv_timeout(RUN_TIMEOUT) {
        Ok(Ok(())) => Ok((2 * n) as f64 / start.elapsed().as_secs_f64()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "not every Pong arrived within {} s",
            RUN_TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_argument() {
        assert!(matches!(wire_variant("current"), Ok(WireVariant::Current)));
        assert!(matches!(
            wire_variant("legacy2024"),
            Ok(WireVariant::Legacy2024)
        ));
        assert!(wire_variant("2024").is_err());
        assert!(client_main(&["1".into(), "x".into()]).is_err());
        assert!(server_main(&["notaport".into(), "current".into()]).is_err());
    }

    fn count(seqs: &[i64]) -> Result<(), String> {
        let system = ActorSystem::new();
        let (tx, rx) = channel();
        let n = seqs.len() as i64;
        let counter = system.root().spawn(&Props::from_producer(move || Counter {
            expect: 0,
            n,
            error: None,
            done: tx.clone(),
        }));
        for &seq in seqs {
            system.root().send(&counter, Pong { seq });
        }
        let r = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the counter reports");
        system.shutdown();
        r
    }

    #[test]
    fn counter_checks_the_order() {
        assert_eq!(count(&[0, 1, 2, 3]), Ok(()));
        let e = count(&[0, 2, 1, 3]).unwrap_err();
        assert!(e.contains("pong 2 arrived when 1 was expected"), "{e}");
    }

    #[test]
    fn rust_to_rust_nodes_in_one_process() {
        for wire in [WireVariant::Current, WireVariant::Legacy2024] {
            let (server, server_remote) = start_server(0, wire).unwrap();
            let client = ActorSystem::new();
            let client_remote = Remote::start(
                &client,
                RemoteConfig::new("127.0.0.1", 0)
                    .with_serialization(serialization())
                    .with_wire_variant(wire),
            )
            .unwrap();
            let rate = run_client(&client, &client_remote, server_remote.address(), 500);
            assert!(matches!(rate, Ok(r) if r > 0.0), "{wire:?}: {rate:?}");
            client_remote.shutdown();
            server_remote.shutdown();
            client.shutdown();
            server.shutdown();
        }
    }
}
