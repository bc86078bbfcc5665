//! Supervision: a child panics, its parent's strategy decides (here: restart).
//!
//! Prints, as protoactor-go's README supervision example does:
//! ```text
//! Starting, initialize actor here
//! Hello Roger
//! handling failure for child. reason:Ouch
//! Restarting, actor is about restart
//! Starting, initialize actor here
//! ```
//! One difference: Go's decider writes its line with `log.Printf` (to stderr, with a
//! timestamp); here it goes to stdout like the other lines, so they appear in one stream,
//! in order.

use std::time::Duration;

use protoactor::prelude::*;
use protoactor::{FailureReason, OneForOneStrategy, SupervisorEvent};

#[derive(Clone)]
struct Hello {
    who: String,
}

struct ParentActor;

impl Actor for ParentActor {
    fn receive(&mut self, ctx: &mut Context) {
        if let Some(msg) = ctx.message_as::<Hello>().cloned() {
            let child = ctx.spawn(&Props::from_producer(|| ChildActor));
            ctx.send(&child, msg);
        }
    }
}

struct ChildActor;

impl Actor for ChildActor {
    fn receive(&mut self, ctx: &mut Context) {
        match_message!(ctx.message(), {
            Started: _ => println!("Starting, initialize actor here"),
            Stopping: _ => println!("Stopping, actor is about shut down"),
            Stopped: _ => println!("Stopped, actor and its children are stopped"),
            Restarting: _ => println!("Restarting, actor is about restart"),
            Hello: msg => {
                println!("Hello {}", msg.who);
                panic!("Ouch");
            },
            _ => {}
        });
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
    // keep the console readable: the panic is reported by the supervisor, not the hook
    std::panic::set_hook(Box::new(|_| {}));
    let decider = |reason: &FailureReason| {
        println!("handling failure for child. reason:{reason}");
        Directive::Restart
    };
    let supervisor = OneForOneStrategy::new(10, Duration::from_secs(1)).with_decider(decider);
    let system = ActorSystem::new();
    let props = Props::from_producer(|| ParentActor).with_supervisor(supervisor);
    // Learn which child failed, to know when its restart is complete (below).
    let (failed_tx, failed_rx) = std::sync::mpsc::channel();
    let _sub = system
        .event_stream()
        .subscribe_to::<SupervisorEvent, _>(move |e| {
            let _ = failed_tx.send(e.child.clone());
        });
    let pid = system.root().spawn(&props);
    system.root().send(
        &pid,
        Hello {
            who: "Roger".into(),
        },
    );
    // The restarted child answers a Touch only after its new instance got Started.
    let child = failed_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("a supervision decision");
    system
        .root()
        .request_future(&child, Touch, Duration::from_secs(5))
        .wait()
        .expect("the restarted child answers");
    // Like Go's example (which returns after Console.ReadLine), end without stopping the
    // actors, so there are no Stopping/Stopped lines.
}
