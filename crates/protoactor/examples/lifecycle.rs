//! Lifecycle events are messages: Started, Stopping, Stopped (and Restarting).
//!
//! Prints:
//! ```text
//! Started, initialize actor here
//! Hello Roger
//! Stopping, actor is about shut down
//! Stopped, actor and its children are stopped
//! ```

use std::time::Duration;

use protoactor::prelude::*;

struct Hello {
    who: String,
}

struct HelloActor;

impl Actor for HelloActor {
    fn receive(&mut self, ctx: &mut Context) {
        match_message!(ctx.message(), {
            Started: _ => println!("Started, initialize actor here"),
            Stopping: _ => println!("Stopping, actor is about shut down"),
            Stopped: _ => println!("Stopped, actor and its children are stopped"),
            Restarting: _ => println!("Restarting, actor is about restart"),
            Hello: msg => println!("Hello {}", msg.who),
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
    let system = ActorSystem::new();
    let pid = system.root().spawn(&Props::from_producer(|| HelloActor));
    system.root().send(
        &pid,
        Hello {
            who: "Roger".into(),
        },
    );
    // Stop is a system message and overtakes queued user messages; wait until Hello was
    // handled (Touch is answered after it) so the console shows the order of events.
    system
        .root()
        .request_future(&pid, Touch, Duration::from_secs(5))
        .wait()
        .expect("touched");
    system.root().stop_future(&pid).wait().expect("stopped");
    system.shutdown();
}
