//! Journal behaviour that does not depend on the provider: faults while recovering, writes
//! after a failed write, the synchronized dispatcher.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use protoactor::prelude::*;
use protoactor_persistence::{
    Entry, EventMeta, InMemoryProvider, Journal, Persistence, PersistenceError, Persistent,
    Provider, Record,
};

/// In-memory storage whose reads fail `read_failures` times, and whose writes fail while
/// `write_failures` is positive.
struct Flaky {
    inner: InMemoryProvider,
    read_failures: AtomicU32,
    write_failures: AtomicU32,
}

impl Flaky {
    fn new(read_failures: u32, write_failures: u32) -> Self {
        Self {
            inner: InMemoryProvider::new(),
            read_failures: AtomicU32::new(read_failures),
            write_failures: AtomicU32::new(write_failures),
        }
    }
    fn take(counter: &AtomicU32) -> Result<(), PersistenceError> {
        match counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)) {
            Ok(_) => Err(PersistenceError::Storage("storage unavailable".into())),
            Err(_) => Ok(()),
        }
    }
}

#[async_trait]
impl Provider for Flaky {
    async fn get_snapshot(&self, a: &str) -> Result<Option<Entry>, PersistenceError> {
        self.inner.get_snapshot(a).await
    }
    async fn persist_snapshot(&self, a: &str, i: u64, s: Record) -> Result<(), PersistenceError> {
        self.inner.persist_snapshot(a, i, s).await
    }
    async fn delete_snapshots(&self, a: &str, i: u64) -> Result<(), PersistenceError> {
        self.inner.delete_snapshots(a, i).await
    }
    async fn get_events(&self, a: &str, f: u64, n: usize) -> Result<Vec<Entry>, PersistenceError> {
        Self::take(&self.read_failures)?;
        self.inner.get_events(a, f, n).await
    }
    async fn persist_event(&self, a: &str, i: u64, e: Record) -> Result<(), PersistenceError> {
        self.persist_events(a, i, vec![e]).await
    }
    async fn persist_events(
        &self,
        a: &str,
        i: u64,
        e: Vec<Record>,
    ) -> Result<(), PersistenceError> {
        Self::take(&self.write_failures)?;
        self.inner.persist_events(a, i, e).await
    }
    async fn delete_events(&self, a: &str, i: u64) -> Result<(), PersistenceError> {
        self.inner.delete_events(a, i).await
    }
}

#[test]
fn storage_down_at_start_fails_then_recovers_and_keeps_early_commands() {
    let flaky = Arc::new(Flaky::new(0, 0));
    let system = ActorSystem::new();
    let pid = system
        .root()
        .spawn_named(&counter_props(flaky.clone(), 0), "early")
        .unwrap();
    assert_eq!(add(&system, &pid, 4), Ok(4));
    system.root().stop_future(&pid).wait().unwrap();

    // The next incarnation's first read fails: the actor fails, the default supervisor
    // restarts it, and the second recovery succeeds. Commands sent meanwhile are kept.
    flaky.read_failures.store(1, Ordering::Release);
    let pid = system
        .root()
        .spawn_named(&counter_props(flaky.clone(), 0), "early")
        .unwrap();
    let f1 = system.root().request_future(&pid, Add(1), WAIT);
    let f2 = system.root().request_future(&pid, Add(1), WAIT);
    assert_eq!(f1.result_as::<Result<i64, String>>().unwrap(), Ok(5));
    assert_eq!(f2.result_as::<Result<i64, String>>().unwrap(), Ok(6));
    let v = get(&system, &pid);
    assert_eq!(
        v.lifecycle,
        vec!["Started", "ReplayComplete"],
        "one successful start"
    );
    assert_eq!(v.replayed, 1);
    system.shutdown();
}

/// Keeps writing after an error (instead of failing), to show the journal refuses.
#[derive(Default)]
struct Stubborn {
    value: i64,
}

impl Persistent for Stubborn {
    type Event = Added;
    type Snapshot = CounterState;
    fn apply_event(&mut self, e: Added, _: EventMeta) {
        self.value += e.amount;
    }
    fn apply_snapshot(&mut self, s: CounterState, _: u64) {
        self.value = s.value;
    }
    fn snapshot(&self) -> CounterState {
        CounterState { value: self.value }
    }
    fn receive(&mut self, ctx: &mut Context, journal: &mut Journal<Self>) {
        if ctx.message().is::<Add>() {
            let seq = journal.next_index();
            let r = journal
                .persist_event(self, ctx, Added { amount: 1, seq })
                .map(|_| self.value)
                .map_err(|e| e.to_string());
            ctx.respond(r);
        } else if ctx.message().is::<Get>() {
            ctx.respond(self.value);
        }
    }
}

#[test]
fn a_failed_write_is_not_applied_and_breaks_the_journal_until_restart() {
    let flaky = Arc::new(Flaky::new(0, 0));
    let system = ActorSystem::new();
    let props = Persistence::using(flaky.clone()).props(Stubborn::default);
    let pid = system.root().spawn_named(&props, "stubborn").unwrap();
    assert_eq!(add(&system, &pid, 1), Ok(1));
    flaky.write_failures.store(1, Ordering::Release);
    let e = add(&system, &pid, 1).unwrap_err();
    assert!(e.contains("storage unavailable"), "{e}");
    assert_eq!(
        ask::<i64>(&system, &pid, Get),
        1,
        "the refused event was not applied"
    );
    // The storage works again, but this incarnation's journal refuses: its state may be stale.
    let e = add(&system, &pid, 1).unwrap_err();
    assert!(e.contains("broken"), "{e}");
    let stored = system
        .runtime()
        .block_on(flaky.get_events("stubborn", 0, 10))
        .unwrap();
    assert_eq!(stored.len(), 1, "neither refused write was stored");
    system.root().stop_future(&pid).wait().unwrap();
    let pid = system.root().spawn_named(&props, "stubborn").unwrap();
    assert_eq!(
        add(&system, &pid, 1),
        Ok(2),
        "a new incarnation recovers and writes"
    );
    system.shutdown();
}

/// The requester of a command whose write failed gets one answer: the handler's own when
/// it answers (Stubborn does), the `PersistenceError` when it does not (see
/// `concurrent_writers_requesters_get_the_conflict` in providers.rs).
#[test]
fn a_handler_that_answers_a_failed_write_is_not_answered_twice() {
    struct ProbeAdd;
    struct ProbeGet;
    let flaky = Arc::new(Flaky::new(0, 1));
    let system = ActorSystem::new();
    let props = Persistence::using(flaky.clone()).props(Stubborn::default);
    let target = system.root().spawn_named(&props, "answers").unwrap();
    // An actor requester records every reply it gets, in order.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx = parking_lot::Mutex::new(tx);
    let probe = system.root().spawn(&Props::from_func(move |ctx| {
        let m = ctx.message();
        let seen = if m.is::<ProbeAdd>() {
            ctx.request(&target, Add(1));
            return;
        } else if m.is::<ProbeGet>() {
            ctx.request(&target, Get);
            return;
        } else if let Some(r) = m.downcast_ref::<Result<i64, String>>() {
            format!("handler: {}", r.is_ok())
        } else if let Some(v) = m.downcast_ref::<i64>() {
            format!("value {v}")
        } else if m.is::<PersistenceError>() {
            "PersistenceError".to_string()
        } else {
            return;
        };
        let _ = tx.lock().send(seen);
    }));
    system.root().send(&probe, ProbeAdd);
    system.root().send(&probe, ProbeGet);
    let replies: Vec<String> = (0..2).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
    assert_eq!(replies, vec!["handler: false", "value 0"]);
    system.shutdown();
}

#[test]
fn works_on_the_synchronized_dispatcher() {
    // The actor runs on the sending thread, which is not a runtime thread.
    let provider: Arc<dyn Provider> = Arc::new(InMemoryProvider::new());
    let system = ActorSystem::new();
    let props = counter_props(provider.clone(), 0).with_dispatcher(Dispatcher::synchronized(300));
    let pid = system.root().spawn_named(&props, "sync").unwrap();
    for _ in 0..10 {
        system.root().send(&pid, Add(2));
    }
    assert_eq!(get(&system, &pid).value, 20);
    system.root().stop_future(&pid).wait().unwrap();
    let pid = system.root().spawn_named(&props, "sync").unwrap();
    let v = get(&system, &pid);
    assert_eq!((v.value, v.replayed), (20, 10));
    system.shutdown();
}

/// A provider that lends its records (the in-memory one) has a page decoded in place: the
/// events before a record that does not decode are handed over in order, then that record
/// is a corrupt event at its own index; a missing index before it is a gap, reported first.
#[test]
fn a_lent_page_hands_over_the_good_events_then_the_first_bad_record() {
    use protoactor_persistence::{replay_async, DecodeError, PersistentMessage, Replayed};
    let p: Arc<dyn Provider> = Arc::new(InMemoryProvider::new());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let added = |seq: u64| Added { amount: 1, seq }.to_record();
    let garbage = || Record {
        type_name: "test.Added".into(),
        payload: vec![0xff; 4],
    };
    let replay = |name: &str| {
        let mut seen = Vec::new();
        let r = rt.block_on(replay_async::<CounterState, CounterEvent>(
            &p,
            name,
            100,
            |item| {
                if let Replayed::Event(_, meta) = item {
                    seen.push(meta.index);
                }
            },
        ));
        (r, seen)
    };

    let records = vec![added(0), added(1), garbage(), added(3)];
    rt.block_on(p.persist_events("bad", 0, records)).unwrap();
    let (r, seen) = replay("bad");
    assert!(
        matches!(
            r,
            Err(PersistenceError::Corrupt {
                index: 2,
                source: DecodeError::Malformed { .. },
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(seen, [0, 1]);

    rt.block_on(p.persist_event("gap", 0, added(0))).unwrap();
    rt.block_on(p.persist_event("gap", 2, garbage())).unwrap();
    let (r, seen) = replay("gap");
    assert!(
        matches!(&r, Err(PersistenceError::Storage(m)) if m.contains("gap: expected event 1, found 2")),
        "{r:?}"
    );
    assert_eq!(seen, [0]);
}
