//! State machines with `Behavior`: the first Hello switches the actor to another handler.
//!
//! Prints:
//! ```text
//! Hello Roger
//! Roger, ey we are now handling messages in another behavior
//! ```

use protoactor::prelude::*;

struct Hello {
    who: String,
}

struct SetBehaviorActor {
    behavior: Behavior<SetBehaviorActor>,
}

impl SetBehaviorActor {
    fn one(&mut self, ctx: &mut Context) {
        if let Some(msg) = ctx.message_as::<Hello>() {
            println!("Hello {}", msg.who);
            self.behavior.become_(Self::other);
        }
    }

    fn other(&mut self, ctx: &mut Context) {
        if let Some(msg) = ctx.message_as::<Hello>() {
            println!(
                "{}, ey we are now handling messages in another behavior",
                msg.who
            );
        }
    }
}

impl Actor for SetBehaviorActor {
    fn receive(&mut self, ctx: &mut Context) {
        self.behavior.current()(self, ctx)
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
    let props = Props::from_producer(|| SetBehaviorActor {
        behavior: Behavior::new(SetBehaviorActor::one),
    });
    let pid = system.root().spawn(&props);
    system.root().send(
        &pid,
        Hello {
            who: "Roger".into(),
        },
    );
    system.root().send(
        &pid,
        Hello {
            who: "Roger".into(),
        },
    );
    system.root().poison_future(&pid).wait().expect("stops");
    system.shutdown();
}
