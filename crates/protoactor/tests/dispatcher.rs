//! Dispatchers: the throughput limit per mailbox turn, and the synchronized dispatcher.

mod common;

use std::sync::{mpsc, Arc, Mutex};

use common::WAIT;
use protoactor::prelude::*;

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

/// Two actors with `throughput` each get 6 messages (one by one, or `batched` in one
/// `MessageBatch`) while the only worker thread is held busy; then the worker is released
/// and the processing order is returned.
fn run_two_actors(throughput: usize, batched: bool) -> Vec<(char, u32)> {
    let (rt, system) = common::system_on_workers(1);
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
    for pid in [&a, &b] {
        if batched {
            let msgs = (1..=6u32)
                .map(|n| Box::new(n) as protoactor::BoxedMessage)
                .collect();
            system.root().send(pid, protoactor::MessageBatch::new(msgs));
        } else {
            for n in 1..=6u32 {
                system.root().send(pid, n);
            }
        }
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
    check_turns_of_two(run_two_actors(2, false));
}

/// A batch is one queue entry, but its messages count one by one against the throughput:
/// the turn ends in the middle of the batch and the next one goes on where it stopped.
#[test]
fn a_batchs_messages_count_against_the_throughput_of_a_turn() {
    check_turns_of_two(run_two_actors(2, true));
}

fn check_turns_of_two(events: Vec<(char, u32)>) {
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
    let events = run_two_actors(300, false);
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

/// Counts in plain `&mut self` state and flags any overlapping `receive` call.
struct NoOverlap {
    busy: Arc<std::sync::atomic::AtomicBool>,
    overlaps: Arc<std::sync::atomic::AtomicUsize>,
    count: u64,
}

impl Actor for NoOverlap {
    fn receive(&mut self, ctx: &mut Context) {
        use std::sync::atomic::Ordering::SeqCst;
        if self.busy.swap(true, SeqCst) {
            self.overlaps.fetch_add(1, SeqCst);
        }
        if ctx.message().is::<u32>() {
            self.count += 1;
            // Widen the window in which a concurrent call would be caught (spinning, not
            // `thread::yield_now`, which gives the CPU away on a loaded machine).
            for _ in 0..200 {
                std::hint::spin_loop();
            }
        } else if ctx.message().is::<&str>() {
            ctx.respond(self.count);
        }
        self.busy.store(false, SeqCst);
    }
}

#[test]
fn receive_is_never_called_concurrently_for_one_actor() {
    let system = ActorSystem::new();
    let busy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let overlaps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (b, o) = (busy.clone(), overlaps.clone());
    // Throughput 1: the mailbox yields after every message, so it is rescheduled (possibly
    // on another worker) as often as possible while four threads send.
    let pid = system.root().spawn(
        &Props::from_producer(move || NoOverlap {
            busy: b.clone(),
            overlaps: o.clone(),
            count: 0,
        })
        .with_dispatcher(Dispatcher::new(1)),
    );
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (system, pid) = (system.clone(), pid.clone());
            std::thread::spawn(move || {
                for n in 0..5_000u32 {
                    system.root().send(&pid, n);
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    // Sent after every message above (the senders joined), so answered after them.
    let count = system
        .root()
        .request_future(&pid, "count", std::time::Duration::from_secs(60))
        .result_as::<u64>()
        .unwrap();
    assert_eq!(count, 20_000, "every message seen by the one instance");
    assert_eq!(
        overlaps.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "receive overlapped"
    );
}

/// Sends `()` on drop: tells the test the actor's state is gone.
struct DropSignal(mpsc::Sender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// An actor left running on a runtime that is then dropped (its mailbox task dropped
/// unfinished) is dropped with it: the context, which the actor's process keeps between
/// turns and which holds the process through its own PID, is taken out and dropped instead
/// of keeping the two alive.
#[test]
fn actors_of_a_dropped_runtime_are_dropped() {
    let system = ActorSystem::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let (dropped_tx, dropped) = mpsc::channel();
    let props = Props::from_producer(move || {
        let signal = DropSignal(dropped_tx.clone());
        move |ctx: &mut Context| {
            let _ = &signal;
            if ctx.message().is::<&str>() {
                ctx.respond(());
            }
        }
    })
    .with_dispatcher(Dispatcher::on_runtime(rt.handle().clone(), 10));
    let pids: Vec<Pid> = (0..3).map(|_| system.root().spawn(&props)).collect();
    for pid in &pids {
        system
            .root()
            .request_future(pid, "ping", WAIT)
            .wait()
            .unwrap();
    }
    assert!(dropped.try_recv().is_err(), "dropped while running");
    drop(rt);
    for _ in &pids {
        dropped
            .recv_timeout(WAIT)
            .expect("actor state dropped with its runtime");
    }
    system.shutdown();
}
