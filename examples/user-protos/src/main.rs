//! Two nodes exchange messages of the user's own `.proto` (compiled by `build.rs` with
//! `protoactor_remote::build::compile_protos`): `Greet` carries an `actor.PID` to answer to,
//! and the `Greeted` answer carries the greeter's PID.
//!
//! `cargo run -p protoactor-example-user-protos` runs both nodes in one process.

use std::time::Duration;

use protoactor::prelude::*;
use protoactor_remote::{PidExt, Remote, RemoteConfig, Serialization};

/// The generated code of `proto/greeting.proto`.
pub mod greeting {
    include!(concat!(env!("OUT_DIR"), "/greeting.rs"));
}

use greeting::{Greet, Greeted};

fn types() -> Serialization {
    let s = Serialization::new();
    s.register::<Greet>();
    s.register::<Greeted>();
    s
}

/// Starts two nodes, greets across them and returns what came back.
fn run() -> Greeted {
    let a = ActorSystem::new();
    let remote_a = Remote::start(&a, RemoteConfig::local().with_serialization(types())).unwrap();
    let b = ActorSystem::new();
    let remote_b = Remote::start(&b, RemoteConfig::local().with_serialization(types())).unwrap();

    b.root()
        .spawn_named(
            &Props::from_func(|ctx| {
                if let Some(g) = ctx.message_as::<Greet>() {
                    let answer = Greeted {
                        text: format!("hello, {}", g.who),
                        greeter: Some(ctx.self_pid().to_proto()),
                    };
                    if let Some(to) = &g.reply_to {
                        ctx.send(&to.to_pid(), answer);
                    }
                }
            }),
            "greeter",
        )
        .unwrap();

    // The answer goes to this actor on node a, named inside the message.
    let (tx, rx) = std::sync::mpsc::channel();
    let inbox = a.root().spawn(&Props::from_func(move |ctx| {
        if let Some(g) = ctx.message_as::<Greeted>() {
            let _ = tx.send(g.clone());
        }
    }));
    a.root().send(
        &Pid::new(remote_b.address(), "greeter"),
        Greet {
            who: "user-protos".into(),
            reply_to: Some(inbox.to_proto()),
        },
    );
    let greeted = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the greeter answers");
    remote_a.shutdown();
    remote_b.shutdown();
    a.shutdown();
    b.shutdown();
    greeted
}

fn main() {
    let g = run();
    println!(
        "{} (from {})",
        g.text,
        g.greeter
            .map(|p| p.to_pid().to_string())
            .unwrap_or_default()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_messages_with_pids_cross_nodes() {
        let g = run();
        assert_eq!(g.text, "hello, user-protos");
        let greeter = g.greeter.expect("the greeter's PID").to_pid();
        assert_eq!(greeter.id(), "greeter");
        // Registered under the proto full names, as protoactor-go would send them.
        use prost::Name;
        assert_eq!(Greet::full_name(), "greeting.Greet");
    }
}
