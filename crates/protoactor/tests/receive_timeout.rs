//! The receive timeout when a message outlasts it (generated cluster grains rely on it to
//! stop idle activations).

mod common;

use std::time::{Duration, Instant};

use common::probe;
use protoactor::prelude::*;

/// The timer wakes at its deadline while a message is still being processed (paused); it
/// must arm again when processing ends, not sleep on for an hour.
#[test]
fn receive_timeout_fires_after_a_message_that_outlasts_it() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<Instant>();
    let pid = system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.set_receive_timeout(Duration::from_millis(100));
        } else if ctx.message().is::<&'static str>() {
            // As a storage call does (protoactor-persistence): the worker's other tasks, the
            // timer's included, move to other threads meanwhile.
            tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(400)));
        } else if ctx.message().is::<ReceiveTimeout>() {
            p.push(Instant::now());
        }
    }));
    let sent = Instant::now();
    system.root().send(&pid, "slow");
    let fired = rx.next();
    assert!(
        fired - sent >= Duration::from_millis(500),
        "{:?}",
        fired - sent
    );
    system.shutdown();
}

/// A receive timeout first set while a user message is handled (the actor had no timer, nor
/// any other of the context's rarely used state, before it) counts from the end of that
/// message, as protoactor-go's does (the message that sets it counts as influencing).
#[test]
fn a_receive_timeout_set_in_a_user_message_counts_from_the_end_of_that_message() {
    let system = ActorSystem::new();
    let (p, rx) = probe::<(&'static str, Instant)>();
    let pid = system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message_as::<&str>() == Some(&"arm") {
            ctx.set_receive_timeout(Duration::from_millis(200));
            // The message goes on for a while after arming: without the re-arm at its end
            // the timeout would come 50 ms after it.
            tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(150)));
            p.push(("handled", Instant::now()));
        } else if ctx.message().is::<ReceiveTimeout>() {
            p.push(("timeout", Instant::now()));
        }
    }));
    system.root().send(&pid, "arm");
    let (what, handled) = rx.next();
    assert_eq!(what, "handled");
    let (what, fired) = rx.next();
    assert_eq!(what, "timeout");
    assert!(
        fired - handled >= Duration::from_millis(200),
        "fired {:?} after the message",
        fired - handled
    );
    system.shutdown();
}
