//! Dispatchers: the throughput limit per mailbox turn, and the synchronized dispatcher.

mod common;

use std::sync::{mpsc, Arc, Mutex};

use common::WAIT;
use protoactor::prelude::*;
use protoactor::Config;

/// Records `(actor, n)` for every `u32` it handles, into a shared log.
fn recorder(name: char, log: &Arc<Mutex<Vec<(char, u32)>>>, dispatcher: Dispatcher) -> Props {
    let log = log.clone();
    Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            log.lock().unwrap().push((name, *n));
        } else if ctx.message().is::<&str>() {
            ctx.respond(());
        }
    })
    .with_dispatcher(dispatcher)
}

/// Two actors with `throughput` each get 6 messages while the only worker thread is held
/// busy; then the worker is released and the processing order is returned.
fn run_two_actors(throughput: usize) -> Vec<(char, u32)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let system = ActorSystem::with_config(Config::default().with_runtime(rt.handle().clone()));
    let log = Arc::new(Mutex::new(Vec::new()));
    let a = system
        .root()
        .spawn(&recorder('a', &log, Dispatcher::new(throughput)));
    let b = system
        .root()
        .spawn(&recorder('b', &log, Dispatcher::new(throughput)));
    // Both started and idle.
    for pid in [&a, &b] {
        system
            .root()
            .request_future(pid, "ping", WAIT)
            .wait()
            .unwrap();
    }

    // Occupy the single worker so both mailboxes fill before either runs.
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    rt.spawn(async move {
        entered_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(WAIT);
    });
    entered_rx.recv_timeout(WAIT).unwrap();
    for n in 1..=6u32 {
        system.root().send(&a, n);
    }
    for n in 1..=6u32 {
        system.root().send(&b, n);
    }
    release_tx.send(()).unwrap();

    let deadline = std::time::Instant::now() + WAIT;
    while log.lock().unwrap().len() < 12 {
        assert!(
            std::time::Instant::now() < deadline,
            "messages not processed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    system.shutdown();
    drop(rt);
    let v = log.lock().unwrap().clone();
    v
}

/// Lengths of the runs of consecutive events from the same actor.
fn runs(events: &[(char, u32)]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    let mut prev = None;
    for (who, _) in events {
        if prev == Some(*who) {
            *out.last_mut().unwrap() += 1;
        } else {
            out.push(1);
            prev = Some(*who);
        }
    }
    out
}

#[test]
fn a_mailbox_yields_after_throughput_messages_so_others_interleave() {
    let events = run_two_actors(2);
    // Per-actor order is kept.
    for who in ['a', 'b'] {
        let mine: Vec<u32> = events
            .iter()
            .filter(|(w, _)| *w == who)
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(mine, [1, 2, 3, 4, 5, 6], "{who}: {events:?}");
    }
    // One worker, two busy actors, throughput 2: they take turns two messages at a time.
    assert_eq!(runs(&events), [2, 2, 2, 2, 2, 2], "{events:?}");
}

#[test]
fn with_a_large_throughput_a_mailbox_drains_in_one_turn() {
    // The control for the test above: the same scenario without yielding.
    let events = run_two_actors(300);
    assert_eq!(runs(&events), [6, 6], "{events:?}");
}

#[test]
fn the_synchronized_dispatcher_runs_the_actor_on_the_callers_thread() {
    let system = ActorSystem::new();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let pid = system.root().spawn(
        &Props::from_func(move |ctx| {
            if ctx.message().is::<u32>() {
                tx.lock()
                    .unwrap()
                    .send(std::thread::current().id())
                    .unwrap();
            }
        })
        .with_dispatcher(Dispatcher::synchronized(300)),
    );
    let here = std::thread::current().id();
    system.root().send(&pid, 1u32);
    // Handled before `send` returned, on this thread.
    assert_eq!(rx.try_recv(), Ok(here));

    let other = std::thread::spawn({
        let system = system.clone();
        let pid = pid.clone();
        move || {
            system.root().send(&pid, 2u32);
            std::thread::current().id()
        }
    })
    .join()
    .unwrap();
    assert_eq!(rx.try_recv(), Ok(other));
}
