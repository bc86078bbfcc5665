//! Scheduler: send/request once and repeatedly; cancel handles stop further sends.

mod common;

use std::time::Duration;

use common::probe;
use protoactor::prelude::*;
use protoactor::scheduler::Scheduler;

#[test]
fn send_once_delivers_after_the_delay() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let pid = system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(s) = ctx.message_as::<&str>() {
            p.push(*s);
        }
    }));
    let started = std::time::Instant::now();
    let h = Scheduler::new(&system).send_once(Duration::from_millis(50), &pid, "tick");
    assert_eq!(rx.next(), "tick");
    // a lower bound only: the delay is honoured
    assert!(started.elapsed() >= Duration::from_millis(50));
    rx.assert_quiet(Duration::from_millis(100));
    assert!(h.is_finished());
}

#[test]
fn cancelled_send_once_never_arrives() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let pid = system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(s) = ctx.message_as::<&str>() {
            p.push(*s);
        }
    }));
    let h = Scheduler::new(&system).send_once(Duration::from_millis(200), &pid, "late");
    h.cancel();
    rx.assert_quiet(Duration::from_millis(400));
}

#[test]
fn send_repeatedly_until_cancelled() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let pid = system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            p.push(*n);
        }
    }));
    let h = Scheduler::new(&system).send_repeatedly(
        Duration::from_millis(1),
        Duration::from_millis(10),
        &pid,
        9u32,
    );
    assert_eq!(rx.take(3), [9, 9, 9]);
    h.cancel();
    // drain what was already in flight, then nothing more comes
    while rx.try_next(Duration::from_millis(100)).is_some() {}
    rx.assert_quiet(Duration::from_millis(200));
}

#[test]
fn dropping_the_last_handle_cancels_and_detach_keeps_sending() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let pid = system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            p.push(*n);
        }
    }));
    let s = Scheduler::new(&system);
    let h = s.send_repeatedly(
        Duration::from_millis(1),
        Duration::from_millis(10),
        &pid,
        1u32,
    );
    assert_eq!(rx.take(2), [1, 1]);
    let clone = h.clone();
    drop(h);
    // one clone left: still sending
    assert_eq!(rx.take(2), [1, 1]);
    drop(clone);
    while rx.try_next(Duration::from_millis(100)).is_some() {}
    rx.assert_quiet(Duration::from_millis(200));

    s.send_repeatedly(
        Duration::from_millis(1),
        Duration::from_millis(10),
        &pid,
        2u32,
    )
    .detach();
    assert_eq!(rx.take(3), [2, 2, 2]);
    system.shutdown();
}

#[test]
fn request_once_and_repeatedly_carry_the_sender() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let replier = system.root().spawn(&Props::from_func(|ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            let n = *n;
            ctx.respond(n + 1);
        }
    }));
    let collector = system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            p.push(*n);
        }
    }));
    let s = Scheduler::new(&system);
    s.request_once(Duration::from_millis(1), &replier, &collector, 1u32)
        .detach();
    assert_eq!(rx.next(), 2);
    let h = s.request_repeatedly(
        Duration::from_millis(1),
        Duration::from_millis(10),
        &replier,
        &collector,
        10u32,
    );
    assert_eq!(rx.take(2), [11, 11]);
    h.cancel();
}
