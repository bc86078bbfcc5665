//! Futures: wait, result, pipe_to and reenter_after.
//!
//! Prints:
//! ```text
//! wait: ok
//! result: 42
//! pipe_to: 7 arrived
//! reenter_after: still handling other messages
//! reenter_after: resumed with "ask" and 84
//! timeout: request to nonhost/$7 (u32) timed out after 50ms
//! ```

use std::time::Duration;

use protoactor::prelude::*;

fn main() {
    // Framework logs go to stderr; RUST_LOG picks the level (`info` when unset).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let system = ActorSystem::new();
    let root = system.root();
    let doubler = root.spawn(&Props::from_func(|ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            ctx.respond(n * 2);
        }
    }));
    let timeout = Duration::from_secs(5);

    // wait: block until the response arrives (or the timeout)
    let f = root.request_future(&doubler, 1u32, timeout);
    println!("wait: {}", if f.wait().is_ok() { "ok" } else { "failed" });

    // result: block and take the response
    let n = root
        .request_future(&doubler, 21u32, timeout)
        .result_as::<u32>()
        .unwrap();
    println!("result: {n}");

    // pipe_to: forward the response to another actor
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let done_tx = std::sync::Mutex::new(done_tx);
    let sink = root.spawn(&Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            println!("pipe_to: {} arrived", n / 2);
            done_tx.lock().unwrap().send(()).unwrap();
        }
    }));
    root.request_future(&doubler, 7u32, timeout).pipe_to(&sink);
    done_rx.recv_timeout(timeout).unwrap();

    // reenter_after: await without blocking the actor, resume with the original message
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let d2 = doubler.clone();
    let asker = root.spawn(&Props::from_func(move |ctx| {
        match ctx.message_as::<&str>().copied() {
            Some("ask") => {
                let fut = ctx.request_future(&d2, 42u32, Duration::from_secs(5));
                let tx = tx.lock().unwrap().clone();
                ctx.reenter_after_with_context(fut, move |ctx, reply| {
                    let n = reply.ok().and_then(|m| m.downcast_ref::<u32>().copied());
                    println!(
                        "reenter_after: resumed with {:?} and {}",
                        ctx.message_as::<&str>().copied().unwrap_or_default(),
                        n.unwrap_or_default()
                    );
                    tx.send(()).unwrap();
                });
            }
            Some("other") => println!("reenter_after: still handling other messages"),
            _ => {}
        }
    }));
    root.send(&asker, "ask");
    root.send(&asker, "other");
    rx.recv_timeout(timeout).unwrap();

    // timeout: nobody answers
    let silent = root.spawn(&Props::from_func(|_| {}));
    let err = root
        .request_future(&silent, 1u32, Duration::from_millis(50))
        .wait()
        .unwrap_err();
    println!("timeout: {err}");
    system.shutdown();
}
