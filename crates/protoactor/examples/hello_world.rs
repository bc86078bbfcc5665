//! The classic: spawn an actor and greet it (prints `Hello Roger`).

use protoactor::prelude::*;

struct Hello {
    who: String,
}

struct HelloActor;

impl Actor for HelloActor {
    fn receive(&mut self, ctx: &mut Context) {
        match_message!(ctx.message(), {
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
            who: "Roger".to_string(),
        },
    );
    // wait until the actor has handled the greeting, then stop it
    system
        .root()
        .poison_future(&pid)
        .wait()
        .expect("the actor stops");
    system.shutdown();
}
