//! Supervision: a child panics, its parent's strategy decides (here: restart).
//!
//! Prints:
//! ```text
//! Starting, initialize actor here
//! Hello Roger
//! handling failure for child. reason: Ouch
//! Restarting, actor is about restart
//! Starting, initialize actor here
//! ```

use std::time::Duration;

use protoactor::prelude::*;
use protoactor::{FailureReason, OneForOneStrategy};

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
    // keep the console readable: the panic is reported by the supervisor, not the hook
    std::panic::set_hook(Box::new(|_| {}));
    let decider = |reason: &FailureReason| {
        println!("handling failure for child. reason: {reason}");
        Directive::Restart
    };
    let supervisor = OneForOneStrategy::new(10, Duration::from_secs(1)).with_decider(decider);
    let system = ActorSystem::new();
    let props = Props::from_producer(|| ParentActor).with_supervisor(supervisor);
    let pid = system.root().spawn(&props);
    system.root().send(
        &pid,
        Hello {
            who: "Roger".into(),
        },
    );
    std::thread::sleep(Duration::from_millis(300));
    system.shutdown();
}
