//! Interop with real protoactor-go nodes: builds `interop/cmd/gonode` (Go module pinned to
//! `github.com/asynkron/protoactor-go@latest`, the 2024 wire variant), launches it and checks
//! messaging, request/response, remote spawn, remote watch, 100k ordered messages and JSON
//! in both directions, with the 2024 variant set explicitly and with the default config
//! (which falls back to, or learns, Go's variant).
//!
//! Without `go` these tests print a loud SKIPPED line and pass, unless
//! `PROTOACTOR_INTEROP=required` (CI), where they fail.

mod common;

use std::process::Command as Process;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use common::messages::{Command, Echo, JsonEcho, Report, Response, Seq};
use common::*;
use protoactor::prelude::*;
use protoactor::MessageHeader;
use protoactor_remote::{
    EndpointConnected, PidExt, Remote, RemoteConfig, RemoteSpawnError, ResponseStatusCode,
    WireVariant,
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
/// protoactor-go `@latest` (the 2024 variant): Go refuses its first batch, the node resends
/// it in the 2024 variant and says so at WARN; requests, remote spawn both ways and Go's own
/// requests (which teach the node Go's variant) then work. The same node still talks to a
/// default Rust node in the current variant.
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
    system
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
    assert_eq!(err, Some(FutureError::DeadLetter));
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
