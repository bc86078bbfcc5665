//! Node 2 of the remote example: hosts kind `hello` for remote spawn.
//!
//! ```text
//! cargo run -p protoactor-example-remote-hello --bin remote_node2            # listens on 127.0.0.1:8080
//! cargo run -p protoactor-example-remote-hello --bin remote_node1            # in another terminal
//! ```
//! Runs until stdin closes (Ctrl-D) or it is killed. `remote_node2 <port>` picks the port.

use protoactor_example_remote_hello::messages;

use std::io::Read;

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
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let ser = Serialization::new();
    ser.register::<HelloRequest>();
    ser.register::<HelloResponse>();
    ser.register::<Echo>();
    ser.register::<Response>();

    let hello = Props::from_func(|ctx| {
        if ctx.message_as::<HelloRequest>().is_some() {
            ctx.respond(HelloResponse {
                message: "Hello from remote node".into(),
            });
        } else if let Some(e) = ctx.message_as::<Echo>() {
            println!("node2: got Echo {:?} from {:?}", e.message, e.sender);
            let reply = Response {
                some_value: format!("{} (echoed by node2)", e.message),
                from: Some(ctx.self_pid().to_proto()),
                ..Default::default()
            };
            // The PID inside the message is where the answer goes.
            if let Some(to) = &e.sender {
                ctx.send(&to.to_pid(), reply);
            }
        }
    });

    let system = ActorSystem::new();
    let remote = Remote::start(
        &system,
        RemoteConfig::new("127.0.0.1", port)
            .with_serialization(ser)
            .with_kind("hello", hello),
    )
    .expect("remote starts");
    println!("node2: listening on {} with kind `hello`", remote.address());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    remote.shutdown();
    system.shutdown();
}
