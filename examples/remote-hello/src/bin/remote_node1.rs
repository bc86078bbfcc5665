//! Node 1 of the remote example: remote-spawns kind `hello` on node 2 and exchanges
//! `HelloRequest`/`HelloResponse` and `Echo`/`Response` (with PIDs inside) with it.
//!
//! Start `remote_node2` first; `remote_node1 <node2 address>` (default 127.0.0.1:8080).

use protoactor_example_remote_hello::messages;

use std::time::Duration;

use messages::{Echo, HelloRequest, HelloResponse, Response};
use protoactor::prelude::*;
use protoactor_remote::{PidExt, Remote, RemoteConfig, Serialization};

fn main() {
    // Framework logs go to stderr; RUST_LOG picks the level (`info` when unset).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let node2 = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let ser = Serialization::new();
    ser.register::<HelloRequest>();
    ser.register::<HelloResponse>();
    ser.register::<Echo>();
    ser.register::<Response>();

    let system = ActorSystem::new();
    let remote = Remote::start(
        &system,
        RemoteConfig::new("127.0.0.1", 0).with_serialization(ser),
    )
    .expect("remote starts");
    println!("node1: listening on {}", remote.address());

    let timeout = Duration::from_secs(10);
    let pid = remote
        .spawn_named_blocking(&node2, "remote", "hello", timeout)
        .or_else(|e| match e {
            // Run twice against the same node 2: the actor is already there.
            protoactor_remote::RemoteSpawnError::Status { pid: Some(p), .. } => Ok(p),
            e => Err(e),
        })
        .expect("node 2 spawns `hello` (is remote_node2 running?)");
    println!("node1: spawned {pid} on node 2");

    let hello = system
        .root()
        .request_future(&pid, HelloRequest {}, timeout)
        .result_as::<HelloResponse>()
        .expect("a HelloResponse");
    println!("node1: {}", hello.message);

    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let target = pid.clone();
    let props = Props::from_func(move |ctx| {
        if ctx.message_as::<Started>().is_some() {
            for i in 0..3 {
                ctx.send(
                    &target,
                    Echo {
                        message: format!("echo #{i}"),
                        sender: Some(ctx.self_pid().to_proto()),
                    },
                );
            }
        } else if let Some(r) = ctx.message_as::<Response>() {
            let from = r.from.as_ref().map(|p| p.to_pid().to_string());
            let _ = tx.send(format!("{} from {:?}", r.some_value, from));
        }
    });
    system.root().spawn(&props);
    for _ in 0..3 {
        println!(
            "node1: got {}",
            rx.recv_timeout(timeout).expect("a Response")
        );
    }
    remote.shutdown();
    system.shutdown();
}
