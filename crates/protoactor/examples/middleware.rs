//! Middleware: inbound (receiver) and outbound (sender) chains run in registration order
//! around the actor.
//!
//! Prints:
//! ```text
//! inbound first: Hello
//! inbound second: Hello
//! actor: Hello Roger
//! outbound first: to echo
//! outbound second: to echo
//! ```

use std::sync::Arc;

use protoactor::prelude::*;
use protoactor::props::{ReceiverFunc, SenderFunc};
use protoactor::MessageEnvelope;

struct Hello {
    who: String,
}

fn inbound(label: &'static str) -> impl Fn(ReceiverFunc) -> ReceiverFunc + Send + Sync {
    move |next| {
        Arc::new(move |ctx: &mut Context, env: MessageEnvelope| {
            if env.message().is::<Hello>() {
                println!("inbound {label}: Hello");
            }
            next(ctx, env)
        })
    }
}

fn outbound(label: &'static str) -> impl Fn(SenderFunc) -> SenderFunc + Send + Sync {
    move |next| {
        Arc::new(move |sc, target: &Pid, env: MessageEnvelope| {
            println!("outbound {label}: to {}", target.id());
            next(sc, target, env)
        })
    }
}

fn main() {
    // Framework logs go to stderr; RUST_LOG picks the level (`info` when unset).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let system = ActorSystem::new();
    let echo = system
        .root()
        .spawn_named(&Props::from_func(|_| {}), "echo")
        .expect("fresh name");
    let props = Props::from_func(move |ctx| {
        if let Some(h) = ctx.message_as::<Hello>() {
            println!("actor: Hello {}", h.who);
            ctx.send(&echo, "pong");
        }
    })
    .with_receiver_middleware(inbound("first"))
    .with_receiver_middleware(inbound("second"))
    .with_sender_middleware(outbound("first"))
    .with_sender_middleware(outbound("second"));
    let pid = system.root().spawn(&props);
    system.root().send(
        &pid,
        Hello {
            who: "Roger".into(),
        },
    );
    system.root().poison_future(&pid).wait().expect("stops");
    system.shutdown();
}
