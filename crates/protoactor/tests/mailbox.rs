//! Mailboxes: bounded (sender waits), bounded-dropping (oldest to dead letters), priority,
//! batch unrolling, mailbox middleware, system-before-user, per-sender ordering under load.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{probe, Probe, ProbeRx, WAIT};
use protoactor::prelude::*;
use protoactor::{
    BoxedMessage, DeadLetterEvent, MailboxMiddleware, MessageBatch, PoisonPill, SharedMessage,
    Touch, Touched,
};

/// Holds an actor's first turn until the test opens `gate` (telling `entered` once the turn
/// has begun), so that what the test sends meanwhile queues behind it.
#[derive(Clone)]
struct TurnGate(Arc<std::sync::Mutex<Option<GateEnds>>>);

/// The receiver the test opens the gate through, and the sender that tells it the turn began.
type GateEnds = (mpsc::Receiver<()>, mpsc::Sender<()>);

impl TurnGate {
    fn new(gate: mpsc::Receiver<()>, entered: mpsc::Sender<()>) -> Self {
        TurnGate(Arc::new(std::sync::Mutex::new(Some((gate, entered)))))
    }

    /// In the actor: waits for the gate on the first call, never again.
    fn hold_first(&self) {
        if let Some((g, entered)) = self.0.lock().unwrap().take() {
            let _ = entered.send(());
            g.recv_timeout(WAIT).expect("gate opened");
        }
    }
}

/// An actor that blocks on its first `u32` until the gate opens (telling `entered` when it
/// starts waiting), and records every `u32`.
fn gated(gate: mpsc::Receiver<()>, entered: mpsc::Sender<()>, p: Probe<u32>) -> Props {
    let gate = TurnGate::new(gate, entered);
    Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            gate.hold_first();
            p.push(*n);
        }
    })
}

#[test]
fn bounded_mailbox_makes_the_sender_wait_and_loses_nothing() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let (open, gate) = mpsc::channel();
    let (entered, _entered_rx) = mpsc::channel();
    let props = gated(gate, entered, p).with_mailbox(MailboxConfig::bounded(2));
    let pid = system.root().spawn(&props);

    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (system, pid, sent) = (system.clone(), pid.clone(), sent.clone());
        std::thread::spawn(move || {
            for i in 0..10u32 {
                system.root().send(&pid, i);
                sent.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // The actor holds message 0; at most 2 more fit in the queue, so the sender is stuck
    // on its 4th send whatever the timing.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        sent.load(Ordering::SeqCst) <= 3,
        "sender went past a full bounded mailbox: {} sent",
        sent.load(Ordering::SeqCst)
    );
    open.send(()).unwrap();
    sender.join().unwrap();
    assert_eq!(rx.take(10), (0..10).collect::<Vec<_>>());
}

#[test]
fn bounded_dropping_mailbox_drops_the_oldest_to_dead_letters() {
    let system = ActorSystem::new();
    let (dp, drx) = probe();
    let _ = system
        .event_stream()
        .subscribe_to::<DeadLetterEvent, _>(move |ev| {
            if let Some(n) = ev.message.downcast_ref::<u32>() {
                dp.push(*n);
            }
        });
    let (p, rx) = probe();
    let (open, gate) = mpsc::channel();
    let (entered, entered_rx) = mpsc::channel();
    let props = gated(gate, entered, p).with_mailbox(MailboxConfig::bounded_dropping(3));
    let pid = system.root().spawn(&props);
    system.root().send(&pid, 0u32);
    // once the actor holds message 0 the queue is empty and the count is exact
    entered_rx.recv_timeout(WAIT).unwrap();
    for i in 1..=6u32 {
        system.root().send(&pid, i);
    }
    open.send(()).unwrap();
    // 1, 2 and 3 were pushed out by 4, 5 and 6
    assert_eq!(rx.take(4), [0, 4, 5, 6]);
    let mut dropped = drx.take(3);
    dropped.sort();
    assert_eq!(dropped, [1, 2, 3]);
    rx.assert_quiet(Duration::from_millis(100));
}

#[test]
fn priority_mailbox_delivers_higher_levels_first_and_fifo_within_a_level() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let (open, gate) = mpsc::channel();
    let (entered, entered_rx) = mpsc::channel();
    let gate = std::sync::Mutex::new(Some(gate));
    let props = Props::from_func(move |ctx| {
        if let Some(s) = ctx.message_as::<&str>() {
            if let Some(g) = gate.lock().unwrap().take() {
                let _ = entered.send(());
                g.recv_timeout(WAIT).unwrap();
            }
            p.push(s.to_string());
        }
    })
    .with_mailbox(MailboxConfig::priority(|m| {
        let s = m.downcast_ref::<&str>().copied().unwrap_or("");
        if s.starts_with("high") {
            7
        } else if s.starts_with("low") {
            0
        } else {
            4
        }
    }));
    let pid = system.root().spawn(&props);
    system.root().send(&pid, "first");
    entered_rx.recv_timeout(WAIT).unwrap();
    for m in ["low1", "mid1", "high1", "low2", "high2", "mid2"] {
        system.root().send(&pid, m);
    }
    open.send(()).unwrap();
    assert_eq!(
        rx.take(7),
        ["first", "high1", "high2", "mid1", "mid2", "low1", "low2"]
    );
}

#[test]
fn a_message_batch_is_unrolled_in_order_and_then_delivered_itself() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let pid = system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            p.push(format!("n{n}"));
        } else if let Some(b) = ctx.message_as::<MessageBatch>() {
            p.push(format!("batch{}", b.len()));
        }
    }));
    let batch = MessageBatch::new(vec![Box::new(1u32), Box::new(2u32), Box::new(3u32)]);
    system.root().send(&pid, batch);
    assert_eq!(rx.take(4), ["n1", "n2", "n3", "batch3"]);
}

/// Receivers of one shared batch read the same messages in order, whatever their mailbox;
/// one that takes its messages gets its own, and the others' stay unchanged.
#[test]
fn a_shared_batch_reaches_every_receiver_in_order_as_the_messages_themselves() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let reader = |name: &'static str, p: Probe<String>| {
        Props::from_func(move |ctx| {
            if let Some(s) = ctx.message_as::<String>() {
                let addr = s.as_ptr() as usize;
                p.push(format!("{name}:{s}@{addr:x}"));
            } else if let Some(b) = ctx.message_as::<MessageBatch>() {
                p.push(format!("{name}:batch{}", b.len()));
            }
        })
    };
    let taker = {
        let p = p.clone();
        Props::from_func(move |ctx| {
            if let Some(mut s) = ctx.take_message::<String>() {
                s.push('!');
                p.push(format!("taker:{s}"));
            }
        })
    };
    let all: Arc<[SharedMessage]> = ["a", "b"]
        .iter()
        .map(|s| SharedMessage::new(s.to_string()))
        .collect();
    let addrs: Vec<String> = all
        .iter()
        .map(|m| {
            format!(
                "{:x}",
                m.message().downcast_ref::<String>().unwrap().as_ptr() as usize
            )
        })
        .collect();
    let pids = [
        system.root().spawn(&reader("one", p.clone())),
        system
            .root()
            .spawn(&reader("two", p.clone()).with_mailbox(MailboxConfig::bounded(10))),
        system.root().spawn(&taker),
    ];
    for pid in &pids {
        system.root().send(pid, MessageBatch::shared(all.clone()));
    }
    let got = rx.take(8);
    let of = |name: &str| -> Vec<String> {
        got.iter()
            .filter(|e| e.starts_with(name))
            .cloned()
            .collect()
    };
    // In order per receiver, the very strings of the batch (no copies), then the batch.
    for name in ["one", "two"] {
        assert_eq!(
            of(name),
            [
                format!("{name}:a@{}", addrs[0]),
                format!("{name}:b@{}", addrs[1]),
                format!("{name}:batch2"),
            ]
        );
    }
    assert_eq!(
        of("taker"),
        ["taker:a!", "taker:b!"],
        "the taker's own copies"
    );
    assert_eq!(all[0].message().downcast_ref::<String>().unwrap(), "a");

    // A shared message sent on its own arrives as the message too.
    let c = SharedMessage::new(String::from("c"));
    system.root().send(&pids[0], c.clone());
    let addr = c.message().downcast_ref::<String>().unwrap().as_ptr() as usize;
    assert_eq!(rx.take(1), [format!("one:c@{addr:x}")]);
}

/// A message whose live copies are counted (through the `Arc`'s count).
#[derive(Clone)]
struct Tracked(Arc<()>);

/// A receiver that panics while it reads a shared message gives its reference up with the
/// failed turn (the actor restarts and goes on); a receiver that forwards one passes the
/// same message on, and the others' message is never changed.
#[test]
fn a_shared_message_is_released_by_a_receiver_that_panics_and_passed_on_by_forward() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let panicker = {
        let p = p.clone();
        Props::from_func(move |ctx| {
            if ctx.message_as::<Tracked>().is_some() {
                panic!("receiver fails on a shared message (expected by the test)");
            }
            if let Some(n) = ctx.message_as::<u32>() {
                p.push(format!("panicker:{n}"));
            }
        })
    };
    let reader = |p: Probe<String>| {
        Props::from_func(move |ctx| {
            if let Some(t) = ctx.message_as::<Tracked>() {
                let addr = Arc::as_ptr(&t.0) as usize;
                p.push(format!("reader:{addr:x}:{}", Arc::strong_count(&t.0)));
            } else if let Some(n) = ctx.message_as::<u32>() {
                p.push(format!("reader:{n}"));
            }
        })
    };
    let sink = system.root().spawn(&reader(p.clone()));
    let sink2 = sink.clone();
    let forwarder = system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<Tracked>() {
            ctx.forward(&sink);
        }
    }));
    let panicking = system.root().spawn(&panicker);
    let counter = Arc::new(());
    let addr = format!("{:x}", Arc::as_ptr(&counter) as usize);
    let shared = SharedMessage::new(Tracked(counter.clone()));
    system.root().send(&panicking, shared.clone());
    system.root().send(&panicking, 1u32);
    assert_eq!(rx.take(1), ["panicker:1"], "restarted after the panic");
    system.root().send(&forwarder, shared.clone());
    // The sink reads the very message (one `Tracked`: the counter and that message).
    assert_eq!(rx.take(1), [format!("reader:{addr}:2")]);
    // The sink's turn on the message is over once it handles the next one.
    system.root().send(&sink2, 3u32);
    assert_eq!(rx.take(1), ["reader:3"]);
    drop(shared);
    // Every envelope that held the message is gone (the turns after them replaced them).
    assert_eq!(Arc::strong_count(&counter), 1, "no reference leaked");
}

#[derive(Clone)]
struct Stats(Probe<String>);

impl MailboxMiddleware for Stats {
    fn mailbox_started(&self) {
        self.0.push("started".into());
    }
    fn message_posted(&self, m: &dyn Message) {
        if let Some(n) = m.downcast_ref::<u32>() {
            self.0.push(format!("posted{n}"));
        } else if let Some(b) = m.downcast_ref::<MessageBatch>() {
            self.0.push(format!("posted-batch{}", b.len()));
        }
    }
    fn message_received(&self, m: &dyn Message) {
        if let Some(n) = m.downcast_ref::<u32>() {
            self.0.push(format!("received{n}"));
        } else if let Some(b) = m.downcast_ref::<MessageBatch>() {
            self.0.push(format!("received-batch{}", b.len()));
        }
    }
    fn mailbox_empty(&self) {
        self.0.push("empty".into());
    }
}

#[test]
fn mailbox_middleware_sees_start_post_receive_and_empty() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let (done, drx) = probe();
    let handled = p.clone();
    let props = Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            handled.push(format!("handled{n}"));
            done.push(());
        }
    })
    .with_mailbox(MailboxConfig::unbounded().with_middleware(Stats(p)));
    let pid = system.root().spawn(&props);
    assert_eq!(rx.until(|e| e == "started"), "started");
    system.root().send(&pid, 7u32);
    drx.next();
    // the mailbox may also run empty after Started; stop at the first "empty" after 7
    let mut got7 = false;
    let seen = rx.collect_until(|e| {
        got7 |= e == "received7";
        got7 && e == "empty"
    });
    let pos = |s: &str| {
        seen.iter()
            .position(|e| e == s)
            .unwrap_or_else(|| panic!("{s} in {seen:?}"))
    };
    assert!(pos("posted7") < pos("received7"), "{seen:?}");
    assert!(pos("received7") < pos("handled7"), "{seen:?}");
}

#[test]
fn system_messages_overtake_queued_user_messages() {
    // Stop is a system message: it is handled before user messages already queued, which
    // then go to dead letters.
    let system = ActorSystem::new();
    let (dp, drx) = probe();
    let _ = system
        .event_stream()
        .subscribe_to::<DeadLetterEvent, _>(move |ev| {
            if let Some(n) = ev.message.downcast_ref::<u32>() {
                dp.push(*n);
            }
        });
    let (p, rx) = probe();
    let (open, gate) = mpsc::channel();
    let (entered, entered_rx) = mpsc::channel();
    let pid = system.root().spawn(&gated(gate, entered, p));
    system.root().send(&pid, 0u32);
    entered_rx.recv_timeout(WAIT).unwrap();
    for i in 1..=3u32 {
        system.root().send(&pid, i);
    }
    let stopped = system.root().stop_future(&pid);
    open.send(()).unwrap();
    stopped.wait().unwrap();
    assert_eq!(rx.next(), 0);
    rx.assert_quiet(Duration::from_millis(100));
    let mut dead = drx.take(3);
    dead.sort();
    assert_eq!(dead, [1, 2, 3]);
}

#[test]
fn per_sender_order_holds_under_concurrent_senders() {
    // 4 threads each send 50,000 numbered messages to one actor; each sender's messages
    // must arrive in the order it sent them, and none may be lost.
    senders_keep_their_order(MailboxConfig::bounded(1000), &[50_000; 4]);
}

#[test]
fn an_unbounded_mailbox_keeps_per_sender_order_under_many_senders_and_a_burst() {
    // The unbounded queue's lock, contended: 8 threads on 2 cores push while the runner
    // takes batches, and one of them sends a burst of 200,000 that grows the queue's buffer
    // far past what an idle mailbox keeps.
    let mut counts = [20_000u64; 8];
    counts[0] = 200_000;
    senders_keep_their_order(MailboxConfig::unbounded(), &counts);
}

/// Threads send `counts[s]` numbered messages each to one actor with `mailbox`, all at
/// once; each sender's messages must arrive in the order it sent them, and none may be lost.
fn senders_keep_their_order(mailbox: MailboxConfig, counts: &[u64]) {
    let senders = counts.len();
    let expected: u64 = counts.iter().sum();
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let props = Props::from_producer(move || {
        let p = p.clone();
        let mut next = vec![0u64; senders];
        let mut total = 0u64;
        move |ctx: &mut Context| {
            if let Some(&(s, i)) = ctx.message_as::<(usize, u64)>() {
                if next[s] != i {
                    p.push(Err(format!("sender {s}: expected {} got {i}", next[s])));
                }
                next[s] = i + 1;
                total += 1;
                if total == expected {
                    p.push(Ok(total));
                }
            }
        }
    })
    .with_mailbox(mailbox);
    let pid = system.root().spawn(&props);
    let start = Arc::new(std::sync::Barrier::new(senders));
    let threads: Vec<_> = counts
        .iter()
        .enumerate()
        .map(|(s, &n)| {
            let (system, pid, start) = (system.clone(), pid.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for i in 0..n {
                    system.root().send(&pid, (s, i));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let r = rx
        .try_next(Duration::from_secs(60))
        .expect("all messages processed");
    assert_eq!(r, Ok(expected));
}

#[test]
fn many_actors_many_messages_on_the_default_dispatcher() {
    // Stress the scheduling state: 200 actors, each woken and parked many times by
    // bursts from the test thread, must see every message.
    let system = ActorSystem::new();
    let counted = Arc::new(AtomicUsize::new(0));
    let (p, rx) = probe();
    let pids: Vec<_> = (0..200)
        .map(|_| {
            let (counted, p) = (counted.clone(), p.clone());
            system.root().spawn(&Props::from_func(move |ctx| {
                if ctx.message().is::<u8>()
                    && counted.fetch_add(1, Ordering::SeqCst) + 1 == 200 * 500
                {
                    p.push(());
                }
            }))
        })
        .collect();
    for round in 0..500u32 {
        for pid in &pids {
            system.root().send(pid, 1u8);
        }
        if round % 50 == 0 {
            std::thread::yield_now();
        }
    }
    rx.next();
    assert_eq!(counted.load(Ordering::SeqCst), 200 * 500);
}

/// An unbounded mailbox's runner takes the queued messages in one batch per turn: those
/// of the batch not yet handled when the turn ends early must neither be lost nor reordered.
/// A panic in the middle of a batch restarts the actor, and the rest of the batch follows.
#[test]
fn a_panic_in_the_middle_of_a_turn_loses_none_of_the_messages_queued_behind_it() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let (open, gate) = mpsc::channel::<()>();
    let (entered, entered_rx) = mpsc::channel();
    let gate = TurnGate::new(gate, entered);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let pid = system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(&n) = ctx.message_as::<u32>() {
            gate.hold_first();
            if n == 50 && !failed.swap(true, Ordering::SeqCst) {
                panic!("fails once on 50");
            }
            p.push(n);
        }
    }));
    system.root().send(&pid, 0u32);
    entered_rx.recv_timeout(WAIT).unwrap();
    // Queued while the actor is busy: the next turn takes them together.
    for i in 1..=100u32 {
        system.root().send(&pid, i);
    }
    open.send(()).unwrap();
    let got = rx.take(100);
    let want: Vec<u32> = (0..=100).filter(|&n| n != 50).collect();
    assert_eq!(
        got, want,
        "the failing message is not redelivered; all others are"
    );
    rx.assert_quiet(Duration::from_millis(100));
}

/// The runner holds the actor across a turn's messages (not taken out of the context and
/// put back per message): a panic in the middle of the turn still restarts it, and the
/// messages behind the failing one go, in order, to the new incarnation, not the old one.
#[test]
fn the_messages_behind_a_panic_in_a_turn_go_to_the_restarted_incarnation() {
    struct Counter {
        incarnation: usize,
        handled: u32,
        log: Probe<(usize, u32, u32)>,
        gate: TurnGate,
    }
    impl Actor for Counter {
        fn receive(&mut self, ctx: &mut Context) {
            if let Some(&n) = ctx.message_as::<u32>() {
                // The first message holds the turn until the rest is queued behind it.
                self.gate.hold_first();
                if n == 50 && self.incarnation == 0 {
                    panic!("the first incarnation fails on 50");
                }
                self.handled += 1;
                self.log.push((self.incarnation, self.handled, n));
            }
        }
    }
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let made = Arc::new(AtomicUsize::new(0));
    let (open, gate) = mpsc::channel::<()>();
    let (entered, entered_rx) = mpsc::channel();
    let gate = TurnGate::new(gate, entered);
    let pid = system.root().spawn(&Props::from_producer(move || Counter {
        incarnation: made.fetch_add(1, Ordering::SeqCst),
        handled: 0,
        log: p.clone(),
        gate: gate.clone(),
    }));
    system.root().send(&pid, 0u32);
    entered_rx.recv_timeout(WAIT).unwrap();
    for i in 1..=100u32 {
        system.root().send(&pid, i);
    }
    open.send(()).unwrap();
    let got = rx.take(100);
    let mut want: Vec<(usize, u32, u32)> = (0..50).map(|n| (0, n + 1, n)).collect();
    want.extend((51..=100).map(|n| (1, n - 50, n)));
    assert_eq!(got, want, "(incarnation, its count, message)");
    rx.assert_quiet(Duration::from_millis(100));
}

/// A stop requested in the middle of a turn (a system message) is handled before the rest
/// of the batch, which goes to dead letters in order, before any watcher hears of the stop.
/// A watcher of `target`: `None` once it watches, then, when it hears of the stop, the dead
/// letters `dead` logged so far.
fn note_dead_letters_at_stop<T: Clone + Send + 'static>(
    system: &ActorSystem,
    target: &Pid,
    dead: &Arc<std::sync::Mutex<Vec<T>>>,
) -> ProbeRx<Option<Vec<T>>> {
    let (wp, wrx) = probe();
    let (t, d) = (target.clone(), dead.clone());
    system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            ctx.watch(&t);
            wp.push(None);
        } else if ctx.message().is::<Terminated>() {
            wp.push(Some(d.lock().unwrap().clone()));
        }
    }));
    wrx
}

#[test]
fn a_stop_in_the_middle_of_a_turn_dead_letters_the_rest_in_order_before_terminated() {
    let system = ActorSystem::new();
    let dead = Arc::new(std::sync::Mutex::new(Vec::new()));
    let d = dead.clone();
    let _ = system
        .event_stream()
        .subscribe_to::<DeadLetterEvent, _>(move |ev| {
            if let Some(n) = ev.message.downcast_ref::<u32>() {
                d.lock().unwrap().push(*n);
            }
        });
    let (p, rx) = probe();
    let (open, gate) = mpsc::channel::<()>();
    let (entered, entered_rx) = mpsc::channel();
    let gate = TurnGate::new(gate, entered);
    let target = system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(&n) = ctx.message_as::<u32>() {
            gate.hold_first();
            p.push(n);
            if n == 10 {
                let me = ctx.self_pid().clone();
                ctx.stop(&me);
            }
        }
    }));
    system.root().send(&target, 0u32);
    entered_rx.recv_timeout(WAIT).unwrap();
    for i in 1..=100u32 {
        system.root().send(&target, i);
    }
    let wrx = note_dead_letters_at_stop(&system, &target, &dead);
    assert_eq!(wrx.next(), None, "watching");
    open.send(()).unwrap();
    assert_eq!(rx.take(11), (0..=10).collect::<Vec<u32>>());
    let dead_at_terminated = wrx.next().expect("Terminated");
    assert_eq!(dead_at_terminated, (11..=100).collect::<Vec<u32>>());
    rx.assert_quiet(Duration::from_millis(100));
}

#[test]
fn a_small_message_stored_in_its_envelope_is_taken_on_a_worker_and_dropped_once_on_a_panic() {
    // `Tracked` is one `Arc`: a word, so its envelope holds it with no allocation of its own.
    let (_rt, system) = common::system_on_workers(2);
    let (p, rx) = probe();
    let taker = system.root().spawn(&Props::from_func({
        let p = p.clone();
        move |ctx| {
            if let Some(t) = ctx.take_message::<Tracked>() {
                let count = Arc::strong_count(&t.0);
                drop(t);
                p.push((std::thread::current().id(), count));
            }
        }
    }));
    let panicker = system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message_as::<Tracked>().is_some() {
            panic!("receiver fails on a small message (expected by the test)");
        }
        if ctx.message_as::<u32>().is_some() {
            p.push((std::thread::current().id(), 0));
        }
    }));
    let counter = Arc::new(());
    system.root().send(&taker, Tracked(counter.clone()));
    let (taken_on, count) = rx.next();
    assert_ne!(taken_on, std::thread::current().id(), "taken on a worker");
    assert_eq!(count, 2, "the very message: the counter and the one sent");
    // The taker dropped what it took (before telling); its envelope holds `()` since the take.
    assert_eq!(
        Arc::strong_count(&counter),
        1,
        "dropped once, after the take"
    );
    system.root().send(&panicker, Tracked(counter.clone()));
    system.root().send(&panicker, 1u32);
    rx.next();
    // The turn after the panic replaced the envelope that held the message.
    assert_eq!(
        Arc::strong_count(&counter),
        1,
        "dropped once, after the panic"
    );
}

/// A batch of the `u32`s in `ns`.
fn batch_of(ns: impl IntoIterator<Item = u32>) -> MessageBatch {
    MessageBatch::new(
        ns.into_iter()
            .map(|n| Box::new(n) as BoxedMessage)
            .collect(),
    )
}

/// Records, as `"n"` or `"batch<len>"`, the `u32`s and batches published as dead letters:
/// the log so far, and each one as it comes.
fn dead_letter_log(system: &ActorSystem) -> (Arc<std::sync::Mutex<Vec<String>>>, ProbeRx<String>) {
    let dead = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (p, rx) = probe();
    let d = dead.clone();
    let _ = system
        .event_stream()
        .subscribe_to::<DeadLetterEvent, _>(move |ev| {
            let e = if let Some(n) = ev.message.downcast_ref::<u32>() {
                n.to_string()
            } else if let Some(b) = ev.message.downcast_ref::<MessageBatch>() {
                format!("batch{}", b.len())
            } else {
                return;
            };
            d.lock().unwrap().push(e.clone());
            p.push(e);
        });
    (dead, rx)
}

/// A `Touch` sent after a batch is answered once the batch's messages and the emptied batch
/// were handled (a publisher relies on it to learn that a batch was delivered).
#[test]
fn a_touch_sent_after_a_batch_is_answered_after_the_whole_batch() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let pid = system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<u32>() {
            p.push(format!("n{n}"));
        } else if let Some(b) = ctx.message_as::<MessageBatch>() {
            p.push(format!("batch{}", b.len()));
        } else if ctx.message().is::<Touch>() {
            p.push("touch".to_string());
        }
    }));
    system.root().send(&pid, batch_of(1..=3));
    system
        .root()
        .request_future(&pid, Touch, WAIT)
        .result_as::<Touched>()
        .unwrap();
    assert_eq!(rx.take(5), ["n1", "n2", "n3", "batch3", "touch"]);
}

/// A system message that arrives while a batch is being delivered is handled at the next
/// message boundary: a `Stop` sends the batch's remaining messages, then the emptied batch,
/// to dead letters in order, before the watcher hears of the stop.
#[test]
fn a_stop_arriving_in_the_middle_of_a_batch_dead_letters_the_rest_of_it_in_order() {
    let system = ActorSystem::new();
    let (dead, _) = dead_letter_log(&system);
    let (p, rx) = probe();
    let (open, gate) = mpsc::channel::<()>();
    let (entered, entered_rx) = mpsc::channel();
    let target = system.root().spawn(&gated(gate, entered, p));
    system.root().send(&target, batch_of(0..100));
    entered_rx.recv_timeout(WAIT).unwrap();
    // Held in the batch's first message: the stop comes between two of its messages.
    let wrx = note_dead_letters_at_stop(&system, &target, &dead);
    assert_eq!(wrx.next(), None, "watching");
    system.root().stop(&target);
    open.send(()).unwrap();
    assert_eq!(rx.next(), 0);
    let mut want: Vec<String> = (1..100).map(|n| n.to_string()).collect();
    want.push("batch100".into());
    assert_eq!(wrx.next().expect("Terminated"), want);
    rx.assert_quiet(Duration::from_millis(100));
}

/// A `PoisonPill` inside a batch stops the actor there, as it would in the queue: the
/// messages behind it, then the emptied batch, go to dead letters.
#[test]
fn a_poison_pill_inside_a_batch_stops_the_actor_and_dead_letters_the_rest() {
    let system = ActorSystem::new();
    let (_, dead) = dead_letter_log(&system);
    let (p, rx) = probe();
    let pid = system.root().spawn(&Props::from_func(move |ctx| {
        if let Some(&n) = ctx.message_as::<u32>() {
            p.push(n);
        }
    }));
    let msgs: Vec<BoxedMessage> = vec![
        Box::new(1u32),
        Box::new(2u32),
        Box::new(PoisonPill),
        Box::new(3u32),
        Box::new(4u32),
    ];
    system.root().send(&pid, MessageBatch::new(msgs));
    assert_eq!(dead.take(3), ["3", "4", "batch5"]);
    assert_eq!(rx.take(2), [1, 2]);
    rx.assert_quiet(Duration::from_millis(100));
}

/// A panic in the middle of a batch restarts the actor; the batch's messages behind the
/// failing one, then the emptied batch, go to the new incarnation, in order.
#[test]
fn the_rest_of_a_batch_behind_a_panic_goes_to_the_restarted_incarnation() {
    struct Counter {
        incarnation: usize,
        log: Probe<(usize, String)>,
    }
    impl Actor for Counter {
        fn receive(&mut self, ctx: &mut Context) {
            if let Some(&n) = ctx.message_as::<u32>() {
                if n == 5 && self.incarnation == 0 {
                    panic!("the first incarnation fails on 5");
                }
                self.log.push((self.incarnation, n.to_string()));
            } else if let Some(b) = ctx.message_as::<MessageBatch>() {
                self.log
                    .push((self.incarnation, format!("batch{}", b.len())));
            }
        }
    }
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let made = Arc::new(AtomicUsize::new(0));
    let pid = system.root().spawn(&Props::from_producer(move || Counter {
        incarnation: made.fetch_add(1, Ordering::SeqCst),
        log: p.clone(),
    }));
    system.root().send(&pid, batch_of(0..10));
    let mut want: Vec<(usize, String)> = (0..5).map(|n| (0, n.to_string())).collect();
    want.extend((6..10).map(|n| (1, n.to_string())));
    want.push((1, "batch10".into()));
    assert_eq!(rx.take(10), want, "(incarnation, message)");
    rx.assert_quiet(Duration::from_millis(100));
}

/// A bounded mailbox counts a batch as its messages (and the emptied batch as one more):
/// a dropping one of capacity 3 keeps the last three and drops the oldest.
#[test]
fn a_bounded_mailbox_counts_a_batch_as_its_messages() {
    let system = ActorSystem::new();
    let (_, dead) = dead_letter_log(&system);
    let (p, rx) = probe();
    let (open, gate) = mpsc::channel::<()>();
    let (entered, entered_rx) = mpsc::channel();
    let props = gated(gate, entered, p).with_mailbox(MailboxConfig::bounded_dropping(3));
    let pid = system.root().spawn(&props);
    system.root().send(&pid, 0u32);
    entered_rx.recv_timeout(WAIT).unwrap();
    system.root().send(&pid, batch_of(1..=5));
    assert_eq!(dead.take(3), ["1", "2", "3"]);
    open.send(()).unwrap();
    assert_eq!(rx.take(3), [0, 4, 5]);
    rx.assert_quiet(Duration::from_millis(100));
}

/// Mailbox middleware sees a batch posted once, then each of its messages received and the
/// emptied batch, as if the batch had been queued message by message.
#[test]
fn mailbox_middleware_sees_each_message_of_a_batch_received() {
    let system = ActorSystem::new();
    let (p, rx) = probe();
    let (done, drx) = probe();
    let props = Props::from_func(move |ctx| {
        if ctx.message().is::<MessageBatch>() {
            done.push(());
        }
    })
    .with_mailbox(MailboxConfig::unbounded().with_middleware(Stats(p)));
    let pid = system.root().spawn(&props);
    assert_eq!(rx.next(), "started");
    system.root().send(&pid, batch_of(1..=3));
    drx.next();
    let seen: Vec<String> = rx
        .collect_until(|e| e == "received-batch3")
        .into_iter()
        .filter(|e| e != "empty")
        .collect();
    assert_eq!(
        seen,
        [
            "posted-batch3",
            "received1",
            "received2",
            "received3",
            "received-batch3"
        ]
    );
}
