//! Hand-offs on the system's dispatcher: an actor that sends to an idle actor from its
//! turn runs that actor's turn next in its own runtime task (no thread wake-up), and
//! blocking waits inside a turn still see the other actor run.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::WAIT;
use protoactor::prelude::*;

fn system_with_two_workers() -> (tokio::runtime::Runtime, ActorSystem) {
    common::system_on_workers(2)
}

struct Token(u32);
struct Next(Pid);

/// A ring node: records `stamp()` for each token it handles, passes the token on.
fn ring_node<T: Send + 'static>(
    log: Arc<Mutex<Vec<(u32, T)>>>,
    done: mpsc::Sender<()>,
    stamp: impl Fn() -> T + Clone + Send + Sync + 'static,
) -> Props {
    Props::from_producer(move || {
        let (log, done, stamp) = (log.clone(), done.clone(), stamp.clone());
        let mut next: Option<Pid> = None;
        move |ctx: &mut Context| {
            if let Some(Next(n)) = ctx.take_message::<Next>() {
                next = Some(n);
                ctx.respond(());
            } else if let Some(Token(left)) = ctx.take_message::<Token>() {
                log.lock().unwrap().push((left, stamp()));
                match (&next, left) {
                    (_, 0) | (None, _) => done.send(()).unwrap(),
                    (Some(n), _) => ctx.send(n, Token(left - 1)),
                }
            }
        }
    })
}

/// `n` nodes of `props`, each knowing the next (the last the first).
fn ring(system: &ActorSystem, props: &Props, n: usize) -> Vec<Pid> {
    let root = system.root();
    let nodes: Vec<Pid> = (0..n).map(|_| root.spawn(props)).collect();
    for (i, node) in nodes.iter().enumerate() {
        let next = nodes[(i + 1) % n].clone();
        root.request_future(node, Next(next), WAIT).wait().unwrap();
    }
    nodes
}

#[test]
fn a_token_passed_around_a_ring_hops_without_waking_each_node() {
    let (_rt, system) = system_with_two_workers();
    let root = system.root();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let nodes = ring(&system, &ring_node(log.clone(), tx, tokio::task::id), 5);
    // 20 hops, within one poll's hand-offs: a node hands the token to the next in its own
    // task. A node may still be ending its set-up turn (after its answer) when the token
    // first reaches it: its own task then takes the token and the chain goes on in that
    // task, at most once per node. Woken one by one instead, every hop would switch tasks.
    root.send(&nodes[0], Token(19));
    rx.recv_timeout(WAIT).unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 20);
    let switches = log.windows(2).filter(|w| w[0].1 != w[1].1).count();
    assert!(
        switches < nodes.len(),
        "{switches} task switches in 20 hops: {log:?}"
    );
    system.shutdown();
}

#[test]
fn a_long_chain_lets_the_workers_other_tasks_run_and_loses_no_hop() {
    // One worker: without a limit on hand-offs per poll, the whole chain would run in one
    // poll and the other task below would not run until it ended.
    let (rt, system) = common::system_on_workers(1);
    let root = system.root();
    let ticks = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let stamp = {
        let ticks = ticks.clone();
        move || ticks.load(std::sync::atomic::Ordering::SeqCst)
    };
    let nodes = ring(&system, &ring_node(log.clone(), tx, stamp), 3);
    let ticker = {
        let ticks = ticks.clone();
        rt.spawn(async move {
            loop {
                ticks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        })
    };
    root.send(&nodes[0], Token(99_999));
    rx.recv_timeout(WAIT).unwrap();
    ticker.abort();
    let log = log.lock().unwrap();
    let hops: Vec<u32> = log.iter().map(|(left, _)| *left).collect();
    assert_eq!(
        hops,
        (0..100_000).rev().collect::<Vec<_>>(),
        "every hop, in order"
    );
    // 100,000 hops are at least 775 polls of at most 129 turns, so at least 193 of tokio's
    // ticks (a poll from its run queue and three from its LIFO slot): a task that yielded
    // runs again after at most 61 ticks, when the worker polls its drivers.
    let (first, last) = (log[0].1, log[log.len() - 1].1);
    assert!(
        last > first,
        "the other task ran during the chain: {first} .. {last}"
    );
    system.shutdown();
}

/// An actor that, on `Ask`, requests from `other` and blocks its thread for the answer.
struct Ask;

#[test]
fn an_actor_blocking_on_a_request_to_an_idle_actor_gets_its_answer() {
    let (_rt, system) = system_with_two_workers();
    let root = system.root();
    let echo = root.spawn(&Props::from_func(|ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            ctx.respond(*n + 1);
        }
    }));
    let asker = {
        let echo = echo.clone();
        root.spawn(&Props::from_func(move |ctx| {
            if ctx.message().is::<Ask>() {
                // The request wins the idle echo's schedule from this turn; the blocking
                // wait must let it run elsewhere.
                let got = ctx
                    .request_future(&echo, 41u32, WAIT)
                    .result_as::<u32>()
                    .unwrap();
                ctx.respond(got);
            }
        }))
    };
    let started = Instant::now();
    let got = root
        .request_future(&asker, Ask, WAIT)
        .result_as::<u32>()
        .unwrap();
    assert_eq!(got, 42);
    assert!(started.elapsed() < WAIT);
    system.shutdown();
}

#[test]
fn a_sender_waiting_for_room_in_a_bounded_mailbox_it_handed_off_is_not_stuck() {
    let (_rt, system) = system_with_two_workers();
    let root = system.root();
    let (tx, rx) = mpsc::channel();
    let sink = root.spawn(
        &Props::from_func(move |ctx| {
            if let Some(n) = ctx.message_as::<u32>() {
                tx.send(*n).unwrap();
            }
        })
        .with_mailbox(MailboxConfig::bounded(1)),
    );
    let feeder = {
        let sink = sink.clone();
        root.spawn(&Props::from_func(move |ctx| {
            if ctx.message().is::<Ask>() {
                // The first send wins the idle sink's schedule; the second finds the
                // mailbox full and waits for the sink, which must run meanwhile.
                for n in 0..5u32 {
                    ctx.send(&sink, n);
                }
            }
        }))
    };
    root.send(&feeder, Ask);
    let got: Vec<u32> = (0..5).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    system.shutdown();
}

#[test]
fn actors_stopped_from_another_actors_turn_end_their_runtime_tasks() {
    let (rt, system) = system_with_two_workers();
    let root = system.root();
    let tasks_before = rt.metrics().num_alive_tasks();
    let victims: Vec<Pid> = (0..50)
        .map(|_| root.spawn(&Props::from_func(|_| {})))
        .collect();
    for v in &victims {
        root.request_future(v, Touch, WAIT).wait().unwrap();
    }
    let (tx, rx) = mpsc::channel();
    let stopper = {
        let victims = victims.clone();
        root.spawn(&Props::from_func(move |ctx| {
            if ctx.message().is::<Ask>() {
                for v in &victims {
                    ctx.watch(v);
                    // Each stop wins an idle victim: one is handed off to this task.
                    ctx.stop(v);
                }
            } else if ctx.message().is::<Terminated>() {
                tx.send(()).unwrap();
            }
        }))
    };
    root.send(&stopper, Ask);
    for _ in &victims {
        rx.recv_timeout(WAIT).unwrap();
    }
    // Every victim's task ended (the stopper's is still alive).
    let deadline = Instant::now() + WAIT;
    while rt.metrics().num_alive_tasks() > tasks_before + 1 {
        assert!(
            Instant::now() < deadline,
            "{} tasks alive, {} before",
            rt.metrics().num_alive_tasks(),
            tasks_before
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    system.shutdown();
}

/// A ring node that passes its token on forever, counting hops, until `stop` is set.
fn endless_node(hops: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> Props {
    Props::from_producer(move || {
        let (hops, stop) = (hops.clone(), stop.clone());
        let mut next: Option<Pid> = None;
        move |ctx: &mut Context| {
            if let Some(Next(n)) = ctx.take_message::<Next>() {
                next = Some(n);
                ctx.respond(());
            } else if ctx.message().is::<Token>() {
                hops.fetch_add(1, Ordering::Relaxed);
                if let (Some(n), false) = (&next, stop.load(Ordering::Relaxed)) {
                    ctx.send(n, Token(0));
                }
            }
        }
    })
}

/// Sets the flag that ends an [`endless_node`] chain when dropped.
struct EndChain(Arc<AtomicBool>);

impl Drop for EndChain {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Waits (without sleeping) until `hops` has moved past `from`: the chain is running.
fn wait_for_hops(hops: &AtomicU64, from: u64) {
    let deadline = Instant::now() + WAIT;
    while hops.load(Ordering::Relaxed) <= from {
        assert!(Instant::now() < deadline, "the chain made no hop");
        std::thread::yield_now();
    }
}

#[test]
fn an_endless_chain_on_one_worker_leaves_room_for_tasks_actors_and_timers() {
    // One worker: everything else below runs only when the chain's poll gives it a turn.
    let (rt, system) = common::system_on_workers(1);
    let root = system.root();
    let hops = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Ends the chain however the test ends: a failed assertion must not leave the runtime's
    // drop waiting for a worker the chain holds.
    let _end_chain = EndChain(stop.clone());
    let nodes = ring(&system, &endless_node(hops.clone(), stop.clone()), 3);
    let other = root.spawn(&Props::from_func(|ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            ctx.respond(*n + 1);
        }
    }));
    root.send(&nodes[0], Token(0));
    wait_for_hops(&hops, 1_000);

    // A task spawned on the runtime runs, and a timer fires, while the chain goes on, each
    // within a bounded number of hops: tokio looks at its other queues and its drivers
    // every at most 127 polls from its run queue, each followed by at most 3 from its LIFO
    // slot, and every poll of the chain ends after a bounded number of messages.
    let (tx, rx) = mpsc::channel();
    let before = hops.load(Ordering::Relaxed);
    {
        let (tx, hops) = (tx.clone(), hops.clone());
        rt.spawn(async move { tx.send(("task", hops.load(Ordering::Relaxed))).unwrap() });
    }
    {
        let hops = hops.clone();
        rt.spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            tx.send(("timer", hops.load(Ordering::Relaxed))).unwrap();
        });
    }
    let mut seen = vec![
        rx.recv_timeout(WAIT).unwrap(),
        rx.recv_timeout(WAIT).unwrap(),
    ];
    seen.sort();
    assert_eq!([seen[0].0, seen[1].0], ["task", "timer"]);
    for (what, at) in &seen {
        assert!(
            at - before < 1_000_000,
            "the {what} ran after {} hops of the chain",
            at - before
        );
    }
    // Another actor answers a request.
    let got = root
        .request_future(&other, 41u32, WAIT)
        .result_as::<u32>()
        .unwrap();
    assert_eq!(got, 42);
    // The chain was not stopped to let them run: it still hops.
    wait_for_hops(&hops, hops.load(Ordering::Relaxed).max(before));

    drop(_end_chain);
    system.shutdown();
}
