//! Interop with real protoactor-go nodes: builds `interop/cmd/gonode` (Go module pinned to
//! `github.com/asynkron/protoactor-go@latest`, the 2024 wire variant), launches it and checks
//! messaging, request/response, remote spawn, remote watch, 100k ordered messages and JSON
//! in both directions, with the 2024 variant set explicitly and with the default config
//! (which probes for, or learns, Go's variant).
//!
//! Without `go` these tests print a loud SKIPPED line and pass, unless
//! `PROTOACTOR_INTEROP=required` (CI), where they fail.

mod common;

use std::process::Command as Process;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use common::messages::{
    Command, Echo, HelloRequest, HelloResponse, JsonEcho, Ping, Pong, Report, Response, Seq, Start,
    StartRemote,
};
use common::*;
use protoactor::prelude::*;
use protoactor::MessageHeader;
use protoactor_remote::{
    EndpointConnected, PidExt, Remote, RemoteConfig, RemoteSpawnError, ResponseStatusCode,
    Serialization, WireVariant,
};
use protoactor_testkit::go;
use protoactor_testkit::process::{test_child, ChildProcess};

const GO_ECHO_KIND: &str = "goecho";
const RUST_ECHO_KIND: &str = "rustecho";

/// A running child node (`READY <address>` on stdout once it serves); killed when dropped.
struct ChildNode {
    process: ChildProcess,
    address: String,
}

impl ChildNode {
    fn start(label: &str, cmd: Process) -> ChildNode {
        // The test harness may print its own text before ours on the same line.
        let mut process = ChildProcess::spawn(label, cmd, |line| {
            let i = line.find("READY ")?;
            Some(
                line[i + 6..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            )
        });
        let address = process.next_line("READY <address>", WAIT);
        ChildNode { process, address }
    }

    /// The Go node (`interop/cmd/gonode`), or `None` (after a loud SKIPPED line) without Go.
    fn go() -> Option<ChildNode> {
        let bin = go::go_program("gonode", "Go interop test")?;
        Some(Self::start("gonode", Process::new(bin)))
    }

    /// The same test binary, running `interop_child_node` as a separate Rust node.
    fn rust() -> ChildNode {
        let mut cmd = test_child("interop_child_node");
        cmd.env("PROTOACTOR_INTEROP_CHILD", "1");
        Self::start("rust node", cmd)
    }

    fn pid(&self, id: &str) -> Pid {
        Pid::new(self.address.as_str(), id)
    }

    fn kill(&mut self) {
        self.process.kill();
    }
}

/// A Rust node speaking protoactor-go's 2024 wire variant, with the test kinds.
fn rust_node() -> (ActorSystem, Arc<Remote>) {
    let ser = serialization();
    ser.register::<Command>();
    ser.register::<Report>();
    ser.register_json::<JsonEcho>();
    node(
        RemoteConfig::local()
            .with_serialization(ser)
            .with_wire_variant(WireVariant::Legacy2024)
            .with_kind(RUST_ECHO_KIND, echo_props()),
    )
}

/// An actor that hands every `Report` (and `Response`) it gets to the test.
fn reporter(system: &ActorSystem) -> (Pid, Receiver<Report>) {
    let (p, rx) = probe::<Report>();
    let props = Props::from_func(move |ctx| {
        if let Some(r) = ctx.message_as::<Report>() {
            p.push(r.clone());
        } else if let Some(r) = ctx.message_as::<Response>() {
            p.push(Report {
                op: "response".into(),
                ok: true,
                detail: r.some_value.clone(),
                pid: r.from.clone(),
                ..Default::default()
            });
        }
    });
    (system.root().spawn(&props), rx)
}

fn wait_op(rx: &Receiver<Report>, op: &str) -> Report {
    loop {
        let r = next(rx);
        if r.op == op {
            return r;
        }
    }
}

fn command(op: &str) -> Command {
    Command {
        op: op.into(),
        ..Default::default()
    }
}

/// Scenario 1: messages both ways, several types, a PID inside a message, headers.
#[test]
fn messages_both_ways_with_pids_and_headers() {
    let Some(go) = ChildNode::go() else { return };
    let (system, remote) = rust_node();
    let (rep, reports) = reporter(&system);
    system.root().spawn_named(&echo_props(), "echo").unwrap();

    // Rust → Go: request with a header and a PID carried inside the message.
    let mut header = MessageHeader::new();
    header.set("rust-key", "rust-value");
    let reply = system
        .root()
        .with_header(header)
        .request_future(
            &go.pid("echo"),
            Echo {
                message: "hi".into(),
                sender: Some(rep.to_proto()),
            },
            WAIT,
        )
        .result_as::<Response>()
        .expect("Go answers");
    assert_eq!(reply.some_value, "go:hi");
    assert_eq!(reply.from.unwrap().to_pid(), go.pid("echo"));
    assert_eq!(
        reply.headers.get("rust-key").map(String::as_str),
        Some("rust-value")
    );
    // Go sent a second Response to the PID that was inside the Echo.
    let r = wait_op(&reports, "response");
    assert_eq!(r.detail, "pid-in-message:hi");

    // Go → Rust: a Go actor requests the Rust echo, which replies to the Go sender PID.
    let control = go.pid("control");
    let rust_echo = system.root().spawn_named(&echo_props(), "echo2").unwrap();
    system.root().send(
        &control,
        Command {
            target: Some(rust_echo.to_proto()),
            report_to: Some(rep.to_proto()),
            ..command("request-actor")
        },
    );
    let r = wait_op(&reports, "request-actor");
    assert!(r.detail.starts_with("echo:from-go-actor"), "{r:?}");
    assert_eq!(r.pid.unwrap().to_pid(), rust_echo);

    // Go → Rust with a header.
    system.root().send(
        &control,
        Command {
            target: Some(rust_echo.to_proto()),
            report_to: Some(rep.to_proto()),
            ..command("header")
        },
    );
    let r = wait_op(&reports, "header");
    assert!(r.ok, "{r:?}");
    stop(&system, &remote);
}

/// A node that never sets the wire variant (`RemoteConfig::local()` defaults) talks to
/// protoactor-go `@latest` (the 2024 variant): it probes Go's variant before its first
/// batch; requests, remote spawn both ways and Go's own requests then work. The same node
/// still talks to a default Rust node in the current variant.
#[test]
fn default_config_talks_to_go_and_to_rust() {
    let Some(go) = ChildNode::go() else { return };
    let ser = serialization();
    ser.register::<Command>();
    ser.register::<Report>();
    let (system, remote) = node(
        RemoteConfig::local()
            .with_serialization(ser)
            .with_kind(RUST_ECHO_KIND, echo_props()),
    );
    let (rep, reports) = reporter(&system);

    // Rust first: the very first batch to Go is a request.
    let reply = system
        .root()
        .request_future(
            &go.pid("echo"),
            Echo {
                message: "default".into(),
                sender: None,
            },
            WAIT,
        )
        .result_as::<Response>()
        .expect("Go answers a node with the default config");
    assert_eq!(reply.some_value, "go:default");

    let rt = system.runtime().clone();
    let pid = rt
        .block_on(remote.spawn_named(&go.address, "d1", GO_ECHO_KIND, WAIT))
        .expect("remote spawn on Go with the default config");
    assert_eq!(pid.id(), "activator/Remote$d1");

    // Go → Rust: a Go request and a Go remote spawn of a Rust kind.
    let rust_echo = system.root().spawn_named(&echo_props(), "echo").unwrap();
    system.root().send(
        &go.pid("control"),
        Command {
            target: Some(rust_echo.to_proto()),
            report_to: Some(rep.to_proto()),
            ..command("request")
        },
    );
    let r = wait_op(&reports, "request");
    assert!(r.ok, "{r:?}");
    system.root().send(
        &go.pid("control"),
        Command {
            address: remote.address().to_string(),
            name: "g1".into(),
            kind: RUST_ECHO_KIND.into(),
            report_to: Some(rep.to_proto()),
            ..command("spawn")
        },
    );
    let r = wait_op(&reports, "spawn");
    assert!(r.ok && r.status == 0, "{r:?}");
    assert_eq!(r.detail, "echo:spawned");

    // And a default Rust node.
    let (s2, r2) = default_node();
    s2.root().spawn_named(&echo_props(), "echo").unwrap();
    let reply = system
        .root()
        .request_future(
            &Pid::new(r2.address(), "echo"),
            Echo {
                message: "rust".into(),
                sender: None,
            },
            WAIT,
        )
        .result_as::<Response>()
        .unwrap();
    assert_eq!(reply.some_value, "echo:rust");
    stop(&s2, &r2);
    stop(&system, &remote);
}

/// Go first: a default node learns the 2024 variant from what Go sends it and answers in
/// it, without a refused batch (one connection to Go, not a second one after a refusal).
#[test]
fn default_config_learns_go_s_variant_from_its_requests() {
    let Some(go) = ChildNode::go() else { return };
    // The controller speaks Go's variant; the node under test never writes to Go first.
    let (controller, controller_remote) = rust_node();
    let (rep, reports) = reporter(&controller);
    let (system, remote) = default_node();
    let (p, connects) = probe::<String>();
    let _ = system
        .event_stream()
        .subscribe_to::<EndpointConnected, _>(move |e| p.push(e.address.clone()));
    let rust_echo = system.root().spawn_named(&echo_props(), "echo").unwrap();
    controller.root().send(
        &go.pid("control"),
        Command {
            target: Some(rust_echo.to_proto()),
            report_to: Some(rep.to_proto()),
            ..command("request")
        },
    );
    let r = wait_op(&reports, "request");
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "echo:from-go-future");
    // The reply reached Go, so every connection made for it has been reported.
    let to_go: Vec<String> = connects.try_iter().filter(|a| *a == go.address).collect();
    assert_eq!(
        to_go.len(),
        1,
        "one connection to Go, no refused first batch"
    );
    stop(&system, &remote);
    stop(&controller, &controller_remote);
}

/// Scenario 2: request_future from Rust to Go and from Go to Rust, and dead letters.
#[test]
fn request_futures_both_ways() {
    let Some(go) = ChildNode::go() else { return };
    let (system, remote) = rust_node();
    let (rep, reports) = reporter(&system);
    let rust_echo = system.root().spawn_named(&echo_props(), "echo").unwrap();

    let reply = system
        .root()
        .request_future(
            &go.pid("echo"),
            Echo {
                message: "f".into(),
                sender: None,
            },
            WAIT,
        )
        .result_as::<Response>()
        .unwrap();
    assert_eq!(reply.some_value, "go:f");

    system.root().send(
        &go.pid("control"),
        Command {
            target: Some(rust_echo.to_proto()),
            report_to: Some(rep.to_proto()),
            ..command("request")
        },
    );
    let r = wait_op(&reports, "request");
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "echo:from-go-future");

    // A missing Go actor: Go answers DeadLetterResponse, the Rust future fails with DeadLetter.
    let err = system
        .root()
        .request_future(&go.pid("nobody"), Echo::default(), WAIT)
        .result()
        .err();
    assert!(err.is_some_and(|e| e.is_dead_letter()));
    // A missing Rust actor: Rust answers DeadLetterResponse, Go's future fails with ErrDeadLetter.
    system.root().send(
        &go.pid("control"),
        Command {
            target: Some(system.new_local_pid("nobody").to_proto()),
            report_to: Some(rep.to_proto()),
            ..command("request-dead")
        },
    );
    let r = wait_op(&reports, "request-dead");
    assert!(r.ok, "{r:?}");
    stop(&system, &remote);
}

/// Scenario 3: remote spawn of a Go kind from Rust and of a Rust kind from Go.
#[test]
fn remote_spawn_both_ways() {
    let Some(go) = ChildNode::go() else { return };
    let (system, remote) = rust_node();
    let (rep, reports) = reporter(&system);
    let rt = system.runtime().clone();

    let pid = rt
        .block_on(remote.spawn_named(&go.address, "r1", GO_ECHO_KIND, WAIT))
        .expect("Go spawns its kind");
    assert_eq!(pid.id(), "activator/Remote$r1");
    assert_eq!(pid.address(), go.address);
    let reply = system
        .root()
        .request_future(
            &pid,
            Echo {
                message: "spawned".into(),
                sender: None,
            },
            WAIT,
        )
        .result_as::<Response>()
        .unwrap();
    assert_eq!(reply.some_value, "go:spawned");
    assert_eq!(
        rt.block_on(remote.spawn_named(&go.address, "r1", GO_ECHO_KIND, WAIT)),
        Err(RemoteSpawnError::Status {
            code: ResponseStatusCode::ProcessNameAlreadyExist,
            pid: Some(pid.clone()),
        })
    );
    let unknown = rt.block_on(remote.spawn_named(&go.address, "r2", "nope", WAIT));
    assert!(
        matches!(
            unknown,
            Err(RemoteSpawnError::Status {
                code: ResponseStatusCode::Error,
                ..
            })
        ),
        "{unknown:?}"
    );

    system.root().send(
        &go.pid("control"),
        Command {
            address: remote.address().to_string(),
            name: "g1".into(),
            kind: RUST_ECHO_KIND.into(),
            report_to: Some(rep.to_proto()),
            ..command("spawn")
        },
    );
    let r = wait_op(&reports, "spawn");
    assert!(r.ok, "{r:?}");
    assert_eq!(r.status, 0);
    let spawned = r.pid.unwrap().to_pid();
    assert_eq!(spawned, system.new_local_pid("activator/Remote$g1"));
    assert_eq!(r.detail, "echo:spawned");
    stop(&system, &remote);
}

/// Scenario 4a: Rust watches a Go actor and stops it; Go watches a Rust actor that stops.
#[test]
fn remote_watch_both_ways() {
    let Some(go) = ChildNode::go() else { return };
    let (system, remote) = rust_node();
    let (rep, reports) = reporter(&system);
    let rt = system.runtime().clone();

    let go_actor = rt
        .block_on(remote.spawn_named(&go.address, "victim", GO_ECHO_KIND, WAIT))
        .unwrap();
    let terminated = spawn_watcher(&system, go_actor.clone());
    // A round trip after the Watch: the Watch is queued first on the same stream.
    system
        .root()
        .request_future(&go_actor, Echo::default(), WAIT)
        .result_as::<Response>()
        .unwrap();
    system.root().stop(&go_actor);
    assert_eq!(next(&terminated), (go_actor, TerminatedReason::Stopped));

    let victim = system.root().spawn_named(&echo_props(), "victim").unwrap();
    system.root().send(
        &go.pid("control"),
        Command {
            target: Some(victim.to_proto()),
            report_to: Some(rep.to_proto()),
            ..command("watch")
        },
    );
    wait_op(&reports, "watching");
    // Go stops the Rust actor (actor.Stop over the wire); Go's watcher sees it terminate.
    system.root().send(
        &go.pid("control"),
        Command {
            target: Some(victim.to_proto()),
            report_to: Some(rep.to_proto()),
            ..command("stop")
        },
    );
    let r = wait_op(&reports, "terminated");
    assert_eq!(r.pid.unwrap().to_pid(), victim);
    // protoactor-go reports every remote Terminated as Stopped.
    assert_eq!(r.detail, "Stopped");

    // Go poisons a Rust actor (actor.PoisonPill, a user message); a Rust watcher sees it go.
    let poisoned = system
        .root()
        .spawn_named(&echo_props(), "poisoned")
        .unwrap();
    let terminated = spawn_watcher(&system, poisoned.clone());
    system.root().send(
        &go.pid("control"),
        Command {
            target: Some(poisoned.to_proto()),
            report_to: Some(rep.to_proto()),
            ..command("poison")
        },
    );
    assert_eq!(next(&terminated), (poisoned, TerminatedReason::Stopped));
    stop(&system, &remote);
}

/// Scenario 4b: killing the Go process gives AddressTerminated in Rust.
#[test]
fn killing_go_gives_address_terminated_in_rust() {
    let Some(mut go) = ChildNode::go() else {
        return;
    };
    let (system, remote) = rust_node();
    let echo = go.pid("echo");
    let terminated = spawn_watcher(&system, echo.clone());
    system
        .root()
        .request_future(&echo, Echo::default(), WAIT)
        .result_as::<Response>()
        .unwrap();
    go.kill();
    assert_eq!(
        next(&terminated),
        (echo, TerminatedReason::AddressTerminated)
    );
    stop(&system, &remote);
}

/// Scenario 4c: killing a Rust node process gives AddressTerminated in Go.
#[test]
fn killing_rust_gives_address_terminated_in_go() {
    let Some(go) = ChildNode::go() else { return };
    let (system, remote) = rust_node();
    let (rep, reports) = reporter(&system);
    let mut child = ChildNode::rust();
    let victim = child.pid("victim");
    // Observable order instead of luck: the child answered a Touch of the victim before
    // READY (its Started has run), and a Go request to the victim comes back before the
    // watch, so the Watch travels on Go's already connected endpoint to a started actor.
    // (Go reports NotFound for any Watch that becomes a dead letter on its side.)
    system.root().send(
        &go.pid("control"),
        Command {
            target: Some(victim.to_proto()),
            report_to: Some(rep.to_proto()),
            ..command("request")
        },
    );
    assert!(wait_op(&reports, "request").ok);
    system.root().send(
        &go.pid("control"),
        Command {
            target: Some(victim.to_proto()),
            report_to: Some(rep.to_proto()),
            ..command("watch")
        },
    );
    wait_op(&reports, "watching");
    child.kill();
    let r = wait_op(&reports, "terminated");
    assert_eq!(r.pid.unwrap().to_pid(), victim);
    assert_eq!(r.detail, "AddressTerminated");
    stop(&system, &remote);
}

/// A Rust node that shuts down gracefully: Go's watcher of an actor there gets
/// `AddressTerminated`. (The `DisconnectRequest` makes that immediate; without it Go would
/// only notice when the 10 s graceful-stop limit drops the connection, so this test cannot
/// tell the two apart: `guarantees.rs`
/// `graceful_shutdown_sends_disconnect_request_on_inbound_streams` checks the frame itself.)
#[test]
fn graceful_rust_shutdown_gives_address_terminated_in_go() {
    let Some(go) = ChildNode::go() else { return };
    let (system, remote) = rust_node();
    let (rep, reports) = reporter(&system);
    let (leaving, leaving_remote) = rust_node();
    let victim = leaving.root().spawn_named(&echo_props(), "victim").unwrap();
    // A Go request first, so that Go's stream to the leaving node is up before it leaves.
    system.root().send(
        &go.pid("control"),
        Command {
            target: Some(victim.to_proto()),
            report_to: Some(rep.to_proto()),
            ..command("request")
        },
    );
    assert!(wait_op(&reports, "request").ok);
    system.root().send(
        &go.pid("control"),
        Command {
            target: Some(victim.to_proto()),
            report_to: Some(rep.to_proto()),
            ..command("watch")
        },
    );
    wait_op(&reports, "watching");
    stop(&leaving, &leaving_remote);
    let r = wait_op(&reports, "terminated");
    assert_eq!(r.pid.unwrap().to_pid(), victim);
    assert_eq!(r.detail, "AddressTerminated");
    stop(&system, &remote);
}

/// The separate Rust node process of [`killing_rust_gives_address_terminated_in_go`]; a
/// no-op unless launched by it.
#[test]
fn interop_child_node() {
    if std::env::var("PROTOACTOR_INTEROP_CHILD").is_err() {
        return;
    }
    let (system, remote) = rust_node();
    let victim = system.root().spawn_named(&echo_props(), "victim").unwrap();
    // Started has run before anyone is told the node is ready.
    touch(&system, &victim);
    println!("READY {}", remote.address());
    // Runs until killed (or stdin closes).
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    stop(&system, &remote);
}

/// Scenario 5: 100,000 messages each way arrive complete and in order.
#[test]
fn hundred_thousand_messages_each_way_in_order() {
    const N: i64 = 100_000;
    let Some(go) = ChildNode::go() else { return };
    let (system, remote) = rust_node();
    let (rep, reports) = reporter(&system);

    // Rust → Go.
    let sink = go.pid("sink");
    system.root().send(
        &sink,
        Command {
            count: N,
            report_to: Some(rep.to_proto()),
            ..command("expect")
        },
    );
    for n in 0..N {
        system.root().send(
            &sink,
            Seq {
                n,
                tag: String::new(),
            },
        );
    }
    let r = wait_op(&reports, "flood-received");
    assert_eq!(r.count, N);
    assert!(r.ok, "Go saw Rust's messages out of order");

    // Go → Rust.
    let (p, done) = probe();
    let collector = system
        .root()
        .spawn_named(&collector_props(N, p), "collector")
        .unwrap();
    system.root().send(
        &go.pid("control"),
        Command {
            target: Some(collector.to_proto()),
            count: N,
            report_to: Some(rep.to_proto()),
            ..command("flood")
        },
    );
    let (count, in_order) = next(&done);
    assert_eq!(count, N);
    assert!(in_order, "Rust saw Go's messages out of order");
    stop(&system, &remote);
}

/// Scenario 6: the JSON serializer (id 1), Rust → Go (Go's writer always uses protobuf).
#[test]
fn json_serializer_rust_to_go() {
    let Some(go) = ChildNode::go() else { return };
    let (system, remote) = rust_node();
    let reply = system
        .root()
        .request_future(
            &go.pid("echo"),
            JsonEcho {
                message: "j".into(),
                number: 7,
            },
            WAIT,
        )
        .result_as::<Response>()
        .unwrap();
    assert_eq!(reply.some_value, "go-json:j:7");
    assert!(reply.via_json);
    stop(&system, &remote);
}

// ---------------------------------------------------------------------------------------
// Issue 24: the first message from a fresh default-config node to a fresh Go node. The node
// probes Go's wire variant before it sends anything else, so even a first batch whose
// current-variant bytes also decode as a 2024 `actor.PID` (the target ids `activator` and
// `aardvarks`: 0x61 reads as field 12, fixed64, and eight bytes follow) reaches its target.

/// A fresh node with the default config (no wire variant set), the test messages, the Go
/// echo's test kinds, and the addresses it connects to.
fn fresh_default_node() -> (ActorSystem, Arc<Remote>, Receiver<String>) {
    let ser = serialization();
    for register in [
        Serialization::register::<Command>,
        Serialization::register::<Report>,
        Serialization::register::<HelloRequest>,
        Serialization::register::<HelloResponse>,
        Serialization::register::<Ping>,
        Serialization::register::<Pong>,
        Serialization::register::<Start>,
        Serialization::register::<StartRemote>,
    ] {
        register(&ser);
    }
    let (system, remote) = node(
        RemoteConfig::local()
            .with_serialization(ser)
            .with_kind(RUST_ECHO_KIND, echo_props()),
    );
    let (p, connects) = probe::<String>();
    let _ = system
        .event_stream()
        .subscribe_to::<EndpointConnected, _>(move |e| p.push(e.address.clone()));
    (system, remote, connects)
}

/// Asserts that the node connected to `address` once: its first batch was not refused and
/// resent on a second connection.
fn connected_once(connects: &Receiver<String>, address: &str) {
    let n = connects.try_iter().filter(|a| a == address).count();
    assert_eq!(n, 1, "one connection to {address}, no refused first batch");
}

/// Remote spawn as the very first message from a fresh default node (its target is
/// `activator`), named or (with `""`) under an id Go generates, then a request to the
/// spawned Go actor.
fn first_message_remote_spawn(name: &str) {
    let Some(go) = ChildNode::go() else { return };
    let (system, remote, connects) = fresh_default_node();
    let pid = system
        .runtime()
        .block_on(remote.spawn_named(&go.address, name, GO_ECHO_KIND, WAIT))
        .expect("the first message, a remote spawn, reaches Go's activator");
    if name.is_empty() {
        assert!(pid.id().starts_with("activator/Remote$"), "{pid}");
        assert_eq!(pid.address(), go.address);
    } else {
        assert_eq!(pid, go.pid(&format!("activator/Remote${name}")));
    }
    let reply = system
        .root()
        .request_future(&pid, Echo::default(), WAIT)
        .result_as::<Response>()
        .expect("the spawned Go actor answers");
    assert_eq!(reply.from.unwrap().to_pid(), pid);
    connected_once(&connects, &go.address);
    stop(&system, &remote);
}

#[test]
fn first_message_named_remote_spawn_reaches_a_fresh_go_node() {
    first_message_remote_spawn("first");
}

#[test]
fn first_message_prefixed_remote_spawn_reaches_a_fresh_go_node() {
    first_message_remote_spawn("");
}

/// A watch of Go's `activator` as the very first message, then a stop: the watcher hears
/// `Stopped` (a watch that missed its target would come back as `NotFound`).
#[test]
fn first_message_watch_reaches_a_fresh_go_node() {
    let Some(go) = ChildNode::go() else { return };
    let (system, remote, connects) = fresh_default_node();
    let activator = go.pid("activator");
    let terminated = spawn_watcher(&system, activator.clone());
    system.root().stop(&activator);
    assert_eq!(next(&terminated), (activator, TerminatedReason::Stopped));
    connected_once(&connects, &go.address);
    stop(&system, &remote);
}

/// A request as the very first message, to Go's second echo, whose id (`aardvarks`) is
/// ambiguous; then one to a missing actor with an ambiguous id, which Go answers with a
/// dead letter.
#[test]
fn first_message_request_reaches_a_fresh_go_node() {
    let Some(go) = ChildNode::go() else { return };
    let (system, remote, connects) = fresh_default_node();
    let target = go.pid("aardvarks");
    let reply = system
        .root()
        .request_future(
            &target,
            Echo {
                message: "first".into(),
                sender: None,
            },
            WAIT,
        )
        .result_as::<Response>()
        .expect("Go's actor answers the first message");
    assert_eq!(reply.some_value, "go:first");
    assert_eq!(reply.from.unwrap().to_pid(), target);
    let missing = system
        .root()
        .request_future(&go.pid("anteaters"), Echo::default(), WAIT)
        .result();
    assert!(
        matches!(missing, Err(FutureError::DeadLetter { .. })),
        "Go answers a request to a missing actor with DeadLetterResponse: {missing:?}"
    );
    connected_once(&connects, &go.address);
    stop(&system, &remote);
}

/// And back: a fresh Go node's first message to a fresh default Rust node (a remote spawn
/// from Go), then the Rust node's first message to Go (a remote spawn on Go).
#[test]
fn first_messages_both_ways_between_fresh_nodes() {
    let Some(go) = ChildNode::go() else { return };
    // The controller asks Go to act; the node under test has not talked to Go before.
    let (controller, controller_remote) = rust_node();
    let (rep, reports) = reporter(&controller);
    let (system, remote, connects) = fresh_default_node();
    controller.root().send(
        &go.pid("control"),
        Command {
            address: remote.address().to_string(),
            name: "from-go".into(),
            kind: RUST_ECHO_KIND.into(),
            report_to: Some(rep.to_proto()),
            ..command("spawn")
        },
    );
    let r = wait_op(&reports, "spawn");
    assert!(r.ok && r.status == 0, "{r:?}");
    assert_eq!(r.detail, "echo:spawned");
    let rt = system.runtime().clone();
    let pid = rt
        .block_on(remote.spawn_named(&go.address, "from-rust", GO_ECHO_KIND, WAIT))
        .expect("remote spawn on Go");
    assert_eq!(pid, go.pid("activator/Remote$from-rust"));
    connected_once(&connects, &go.address);
    stop(&system, &remote);
    stop(&controller, &controller_remote);
}

// protoactor-go's own remote examples (`_examples/remote-activate`, `remote-watch`,
// `remote-benchmark`) with the Go program as node2 and a default-config Rust node as node1.

impl ChildNode {
    /// node2 of protoactor-go's example `example` (activate, watch or benchmark), from
    /// `interop/cmd/goexamples`; `None` (after a loud SKIPPED line) without Go.
    fn go_example(example: &str) -> Option<ChildNode> {
        let mut cmd = Process::new(go::go_program("goexamples", "Go example interop test")?);
        cmd.arg("-example").arg(example);
        Some(Self::start(example, cmd))
    }
}

/// remote-activate: node1 spawns kind `hello` on node2, named and unnamed, and asks each.
#[test]
fn go_example_remote_activate_with_rust_node1() {
    let Some(go) = ChildNode::go_example("activate") else {
        return;
    };
    let (system, remote, connects) = fresh_default_node();
    let rt = system.runtime().clone();
    let named = rt
        .block_on(remote.spawn_named(&go.address, "remote", "hello", WAIT))
        .expect("SpawnNamed(node2, \"remote\", \"hello\")");
    assert_eq!(named, go.pid("activator/Remote$remote"));
    let prefixed = rt
        .block_on(remote.spawn(&go.address, "hello", WAIT))
        .expect("Spawn(node2, \"hello\")");
    assert!(prefixed.id().starts_with("activator/Remote$"), "{prefixed}");
    for pid in [named, prefixed] {
        let res = system
            .root()
            .request_future(&pid, HelloRequest {}, WAIT)
            .result_as::<HelloResponse>()
            .expect("HelloResponse");
        assert_eq!(res.message, "Hello from remote node");
    }
    connected_once(&connects, &go.address);
    stop(&system, &remote);
}

/// remote-watch: node1 spawns kind `remote` on node2 and watches it; stopping it gives
/// `Stopped`, and killing node2 gives `AddressTerminated` for a second one.
#[test]
fn go_example_remote_watch_with_rust_node1() {
    let Some(mut go) = ChildNode::go_example("watch") else {
        return;
    };
    let (system, remote, connects) = fresh_default_node();
    let rt = system.runtime().clone();
    let first = rt
        .block_on(remote.spawn_named(&go.address, "remote", "remote", WAIT))
        .expect("SpawnNamed(node2, \"remote\", \"remote\")");
    let terminated = spawn_watcher(&system, first.clone());
    system.root().stop(&first);
    assert_eq!(next(&terminated), (first, TerminatedReason::Stopped));
    let second = rt
        .block_on(remote.spawn(&go.address, "remote", WAIT))
        .expect("Spawn(node2, \"remote\")");
    let terminated = spawn_watcher(&system, second.clone());
    // The watch went out before this round trip's spawn request: Go has it.
    rt.block_on(remote.spawn(&go.address, "remote", WAIT))
        .expect("a round trip after the watch");
    connected_once(&connects, &go.address);
    go.kill();
    assert_eq!(
        next(&terminated),
        (second, TerminatedReason::AddressTerminated)
    );
    stop(&system, &remote);
}

/// remote-benchmark: node1 sends `StartRemote{sender}` to node2's actor `remote`, waits for
/// `Start`, then sends Pings, and node2 answers each with a Pong to that sender.
#[test]
fn go_example_remote_benchmark_with_rust_node1() {
    const PINGS: u64 = 20_000;
    let Some(go) = ChildNode::go_example("benchmark") else {
        return;
    };
    let (system, remote, connects) = fresh_default_node();
    let (p, done) = probe::<u64>();
    let pongs = std::sync::atomic::AtomicU64::new(0);
    let counter = system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message_as::<Pong>().is_some()
            && pongs.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == PINGS
        {
            p.push(PINGS);
        }
    }));
    let node2 = go.pid("remote");
    system
        .root()
        .request_future(
            &node2,
            StartRemote {
                sender: Some(counter.to_proto()),
            },
            WAIT,
        )
        .result_as::<Start>()
        .expect("node2 answers StartRemote with Start");
    for _ in 0..PINGS {
        system.root().send(&node2, Ping {});
    }
    assert_eq!(next(&done), PINGS);
    connected_once(&connects, &go.address);
    stop(&system, &remote);
}

/// With the probe off, a default node's first batch to Go (a request to `echo`, whose id
/// does not decode as a 2024 PID) is refused by Go, and the node resends it in the 2024
/// variant on a second connection.
#[test]
fn without_the_probe_a_refused_first_batch_is_resent_in_go_s_variant() {
    let Some(go) = ChildNode::go() else { return };
    let (system, remote) = node(
        RemoteConfig::local()
            .with_serialization(serialization())
            .with_variant_probe_timeout(None),
    );
    let (p, connects) = probe::<String>();
    let _ = system
        .event_stream()
        .subscribe_to::<EndpointConnected, _>(move |e| p.push(e.address.clone()));
    let reply = system
        .root()
        .request_future(
            &go.pid("echo"),
            Echo {
                message: "resent".into(),
                sender: None,
            },
            WAIT,
        )
        .result_as::<Response>()
        .expect("Go answers the resent request");
    assert_eq!(reply.some_value, "go:resent");
    let n = connects.try_iter().filter(|a| *a == go.address).count();
    assert_eq!(n, 2, "a second connection after Go refused the first batch");
    stop(&system, &remote);
}
