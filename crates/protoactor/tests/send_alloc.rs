//! What a local send to a warm actor allocates.
//!
//! `allocation-counter` replaces the global allocator of this test binary (hence its own
//! file) and counts the allocations of the measuring thread only, so the actor's own work on
//! the runtime's threads is not counted.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::WAIT;
use protoactor::prelude::*;

fn wait_for(counter: &AtomicU64, n: u64) {
    let deadline = Instant::now() + WAIT;
    while counter.load(Ordering::Acquire) < n {
        assert!(
            Instant::now() < deadline,
            "the actor did not process {n} messages"
        );
        std::thread::yield_now();
    }
}

/// Gives this thread its parking_lot thread data now, outside the measurement: the first
/// time a thread waits for a parking_lot lock (here: tokio's, when a send wakes a parked
/// worker and the worker holds its park lock) parking_lot allocates that data once, and
/// the process-wide table of parked threads may grow (1,056 B in two blocks on this
/// machine). Without this, about one run in fifty counts them against a send.
fn warm_parking_lot() {
    let lock = parking_lot::Mutex::new(());
    let _ =
        parking_lot::Condvar::new().wait_for(&mut lock.lock(), std::time::Duration::from_nanos(1));
}

/// A message larger than a word: boxed when sent.
type Wide = [u64; 2];

/// A started actor counting the `u64`s and `Wide`s it got, and that counter.
fn counter_actor(system: &ActorSystem) -> (Pid, Arc<AtomicU64>) {
    let received = Arc::new(AtomicU64::new(0));
    let r = received.clone();
    let pid = system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<u64>() || ctx.message().is::<Wide>() {
            r.fetch_add(1, Ordering::Release);
        }
    }));
    (pid, received)
}

#[test]
fn a_send_to_a_keeping_up_actor_allocates_nothing_for_a_word_and_the_box_for_more() {
    let system = ActorSystem::new();
    let (pid, received) = counter_actor(&system);
    let root = system.root();
    // Warm: the PID has cached its process and the mailbox has its small buffer.
    root.send(&pid, 0u64);
    wait_for(&received, 1);
    warm_parking_lot();

    const N: u64 = 500;
    let mut small = allocation_counter::AllocationInfo::default();
    for n in 1..=N {
        small += allocation_counter::measure(|| root.send(&pid, n));
        wait_for(&received, n + 1);
    }
    assert_eq!(
        small.count_total, 0,
        "a message of at most a word is stored in its envelope: {small:?}"
    );
    let mut wide = allocation_counter::AllocationInfo::default();
    for n in 1..=N {
        wide += allocation_counter::measure(|| root.send(&pid, [n, n]));
        wait_for(&received, N + n + 1);
    }
    assert_eq!(
        wide.count_total, N,
        "one allocation (the boxed message) per send: {wide:?}"
    );
    assert_eq!(wide.bytes_total, N * 16, "{wide:?}");
    system.shutdown();
}

#[test]
fn a_send_and_turn_for_one_small_message_allocate_nothing() {
    // The synchronized dispatcher runs the actor's turn inside `send`, on this thread, so
    // the runner's own allocations are counted too: taking a lone message from the
    // mailbox (the runner takes batches, see `mailbox/queue.rs`) must not allocate.
    let system = ActorSystem::new();
    let received = Arc::new(AtomicU64::new(0));
    let r = received.clone();
    let pid = system.root().spawn(
        &Props::from_func(move |ctx| {
            if ctx.message().is::<u64>() {
                r.fetch_add(1, Ordering::Release);
            }
        })
        .with_dispatcher(Dispatcher::synchronized(300)),
    );
    let root = system.root();
    root.send(&pid, 0u64);
    assert_eq!(received.load(Ordering::Acquire), 1, "handled inside send");
    warm_parking_lot();

    const N: u64 = 200;
    let mut total = allocation_counter::AllocationInfo::default();
    for n in 1..=N {
        total += allocation_counter::measure(|| root.send(&pid, n));
    }
    assert_eq!(received.load(Ordering::Acquire), N + 1);
    assert_eq!(
        total.count_total, 0,
        "nothing per send and turn (the `u64` is stored in its envelope): {total:?}"
    );
    system.shutdown();
}

#[test]
fn a_burst_to_a_busy_actor_adds_only_amortized_queue_growth() {
    let system = ActorSystem::new();
    let received = Arc::new(AtomicU64::new(0));
    let r = received.clone();
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let (busy_tx, busy) = std::sync::mpsc::channel::<()>();
    let pid = system.root().spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<&str>() {
            // Busy until released, so the burst below builds a backlog without draining.
            let _ = busy_tx.send(());
            let _ = held.lock().unwrap().recv_timeout(WAIT);
        }
        if ctx.message().is::<u64>() || ctx.message().is::<&str>() {
            r.fetch_add(1, Ordering::Release);
        }
    }));
    let root = system.root();
    root.send(&pid, 0u64);
    wait_for(&received, 1);
    root.send(&pid, "hold");
    // Measure only once the runner is inside `hold`: a runner still taking its turn's
    // batch could drain (and free) the buffer the burst is growing.
    busy.recv_timeout(WAIT).expect("the actor took `hold`");
    warm_parking_lot();

    // The mailbox buffer doubles as the backlog grows: log2(backlog) allocations per burst,
    // not one per message (a `u64` has no box of its own). (It is freed when the mailbox drains, to keep idle actors small;
    // an actor that keeps catching up and falling behind therefore regrows it each time.)
    const N: u64 = 10_000;
    let info = allocation_counter::measure(|| {
        for n in 1..=N {
            root.send(&pid, n);
        }
    });
    release.send(()).unwrap();
    wait_for(&received, N + 2);
    let max_growth = 64 - N.leading_zeros() as u64; // log2(N) rounded up
    assert!(
        info.count_total >= 1 && info.count_total <= max_growth,
        "at most {max_growth} buffer growths: {info:?}"
    );
    system.shutdown();
}

/// Spawn-heavy programs keep millions of idle actors: the heap one costs stays within its
/// budget. Counted on the spawning thread, where all of it is allocated: the process with
/// its mailbox (176 B), the tokio task (128 B: one word more and tokio's 128-aligned cell
/// is 256 B), the context (120 B), the PID (88 B), its id (~20 B), the PID's opaque process
/// cache (16 B, see `pid::Resolved`) and the registry entry (one word, plus the table's
/// slack); 561-568 B when this was written (901 B before issue 15).
#[test]
fn an_idle_actor_costs_at_most_its_budget_of_heap() {
    const IDLE_ACTOR_BYTES: i64 = 576;
    const N: usize = 4096;
    let system = ActorSystem::new();
    let started = Arc::new(AtomicU64::new(0));
    let s = started.clone();
    let props = Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            s.fetch_add(1, Ordering::Release);
        }
    });
    let root = system.root();
    let mut pids = Vec::with_capacity(N);
    // Warm: the registry's shards and the runtime's queues have their first buffers.
    pids.push(root.spawn(&props));
    let info = allocation_counter::measure(|| {
        for _ in 1..N {
            pids.push(root.spawn(&props));
        }
    });
    wait_for(&started, N as u64);
    let per_actor = info.bytes_current / (N as i64 - 1);
    assert!(
        per_actor <= IDLE_ACTOR_BYTES,
        "an idle actor costs {per_actor} B of heap: {info:?}"
    );
    drop(pids);
    system.shutdown();
}
