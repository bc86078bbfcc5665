//! The per-message paths of protoactor-rs in isolation, for counting instructions and
//! allocations per delivered message (`valgrind --tool=callgrind` / `--tool=dhat`: run
//! two sizes and divide the difference by the difference in messages). A small program
//! builds in seconds where the benchmark binary, with all five implementations, takes
//! minutes; the shapes are the `protoactor-bench` workloads' (see `src/protoactor_rs.rs`).
//!
//! ```text
//! cargo build --release -p protoactor-bench --example message_profile
//! target/release/examples/message_profile <shape> <n>
//! ```
//!
//! - `counting`: the root sends `n` zero-sized messages to one actor;
//! - `fork-join`: the root sends `n` rounds of one zero-sized message to each of 60 actors;
//! - `fork-join-task`: the same sends from a task on the actors' runtime (the harness's
//!   `savina-fork-join` driver; `fork-join` is `savina-fork-join-outside`'s);
//! - `in-process`: 4 ping/echo pairs, `n` messages each way per pair in bursts of 100,
//!   each message carrying its sender's PID (bounded(110) mailboxes);
//! - `ping-pong`: one message at a time between two actors, `n` round trips;
//! - `thread-ring`: 100 actors in a ring pass one token `n` hops;
//! - `persist`: an event-sourced counter on the in-memory provider (the `persistence`
//!   workload's actor) persists `n` events, one `persist_event` per command;
//! - `recover`: a journal of 1,000 events is written once, then `n` times a new
//!   incarnation of the counter replays it (counted as 1,000 messages each);
//! - `spawn`: the `spawn` workload's tree, fan-out 10 down to `n` leaves (`n` a power of
//!   10), each node spawning its children as its own, leaves answering and stopping
//!   (counted as the actors spawned, 1.111 `n`);
//! - `spawn-root`: the same tree with every node spawned from the root and nothing
//!   stopping (`spawn-root`, protoactor-go's spawn benchmark).
//!
//! It prints the messages delivered and the time taken (meaningless under valgrind). With
//! `PROFILE_SCHED=1` it also prints how often the runtime's workers parked and were
//! unparked, and the threads' voluntary context switches (each a park on a futex or on
//! `epoll_wait`) and CPU time, and `fork-join` sends when its driver is done, and for
//! `ping-pong` and `thread-ring` how often the chain moved to another thread (a message
//! handled on another thread than the one before it); with
//! `PROFILE_WORK=1` the fork-join actors do the harness's `sin·cos` per message; built with `RUSTFLAGS="--cfg tokio_unstable"`, tokio's steal, poll and
//! schedule counts as well.
//! Built with `--features mimalloc`, it runs on mimalloc instead of the system allocator.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protoactor::prelude::*;
use protoactor_persistence::{
    EventMeta, InMemoryProvider, Journal, Persistence, Persistent, Provider,
};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TIMEOUT: Duration = Duration::from_secs(120);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(shape), Some(n)) = (args.first(), args.get(1).and_then(|n| n.parse().ok())) else {
        eprintln!(
            "usage: message_profile <counting|fork-join|fork-join-task|in-process|ping-pong|thread-ring|persist|recover|spawn|spawn-root> <n>"
        );
        std::process::exit(2);
    };
    let system = ActorSystem::new();
    let start = Instant::now();
    let delivered = match shape.as_str() {
        "counting" => counting(&system, n),
        "fork-join" => fork_join(&system, n, false),
        "fork-join-task" => fork_join(&system, n, true),
        "in-process" => in_process(&system, n),
        "ping-pong" => ping_pong(&system, n),
        "thread-ring" => thread_ring(&system, n),
        "persist" => persist(&system, n),
        "recover" => recover(&system, n),
        "spawn" => spawn_tree(&system, n, false),
        "spawn-root" => spawn_tree(&system, n, true),
        other => {
            eprintln!("unknown shape {other}");
            std::process::exit(2);
        }
    };
    let took = start.elapsed();
    println!(
        "{shape}: {delivered} messages in {took:?} ({:.2} M/s)",
        delivered as f64 / took.as_secs_f64() / 1e6
    );
    if profile_sched() {
        print_sched(&system, delivered);
    }
    std::process::exit(0);
}

fn profile_sched() -> bool {
    std::env::var_os("PROFILE_SCHED").is_some()
}

/// The thread that handled the chain's last message (an address in its thread-local
/// storage) and how often the next message was handled on another one (`PROFILE_SCHED=1`).
static LAST_THREAD: AtomicUsize = AtomicUsize::new(0);
static MOVES: AtomicU64 = AtomicU64::new(0);

/// Counts a move of the chain if this message runs on another thread than the last one.
fn note_thread() {
    thread_local!(static HERE: u8 = const { 0 });
    let me = HERE.with(|h| h as *const u8 as usize);
    if LAST_THREAD.swap(me, Ordering::Relaxed) != me {
        MOVES.fetch_add(1, Ordering::Relaxed);
    }
}

/// The runtime's park and wake-up counts per delivered message (`PROFILE_SCHED=1`).
fn print_sched(system: &ActorSystem, delivered: u64) {
    let m = system.runtime().metrics();
    let per = |x: u64| x as f64 / delivered as f64;
    let moves = MOVES.load(Ordering::Relaxed);
    if moves != 0 {
        println!(
            "chain moves between threads {moves} ({:.1} per 100 k msg)",
            per(moves) * 1e5
        );
    }
    for w in 0..m.num_workers() {
        let (parks, unparks) = (m.worker_park_count(w), m.worker_park_unpark_count(w));
        println!(
            "worker {w}: parks {parks} ({:.5}/msg), park+unpark {unparks}, busy {:?}",
            per(parks),
            m.worker_total_busy_duration(w)
        );
        #[cfg(tokio_unstable)]
        println!(
            "worker {w}: polls {} ({:.4}/msg), steals {} in {} operations, local schedules {}, overflow {}, noop {}",
            m.worker_poll_count(w),
            per(m.worker_poll_count(w)),
            m.worker_steal_count(w),
            m.worker_steal_operations(w),
            m.worker_local_schedule_count(w),
            m.worker_overflow_count(w),
            m.worker_noop_count(w),
        );
    }
    #[cfg(tokio_unstable)]
    println!("remote schedules {}", m.remote_schedule_count());
    let mut total = 0u64;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for t in dir.flatten() {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // utime and stime, fields 14 and 15 (clock ticks), after the command's ')'.
            let f: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            if f.len() > 13 {
                println!("thread {}: cpu ticks {} + {}", name.trim(), f[11], f[12]);
            }
            for l in status.lines() {
                if let Some(v) = l.strip_prefix("voluntary_ctxt_switches:") {
                    let v: u64 = v.trim().parse().unwrap_or(0);
                    total += v;
                    println!("thread {}: voluntary switches {v}", name.trim());
                }
            }
        }
    }
    println!("voluntary switches {total} ({:.5}/msg)", per(total));
}

struct Inc;
struct Get;

fn counting(system: &ActorSystem, n: u64) -> u64 {
    let root = system.root();
    let counter = root.spawn(&Props::from_producer(|| {
        let mut count = 0u64;
        move |ctx: &mut Context| {
            if ctx.message().is::<Inc>() {
                count += 1;
            } else if ctx.message().is::<Get>() {
                ctx.respond(count);
            }
        }
    }));
    for _ in 0..n {
        root.send(&counter, Inc);
    }
    let got = root
        .request_future(&counter, Get, TIMEOUT)
        .result_as::<u64>()
        .expect("count");
    assert_eq!(got, n);
    n
}

struct Work;

fn fork_join(system: &ActorSystem, rounds: u64, in_task: bool) -> u64 {
    let root = system.root();
    let with_work = std::env::var_os("PROFILE_WORK").is_some();
    let (tx, rx) = channel::<()>();
    let workers: Vec<Pid> = (0..60)
        .map(|_| {
            let done = tx.clone();
            root.spawn(&Props::from_producer(move || {
                let (done, mut count, mut acc) = (done.clone(), 0u64, 0f64);
                move |ctx: &mut Context| {
                    if ctx.message().is::<Work>() {
                        if with_work {
                            // The harness's per-message computation (`common::work`).
                            acc += (count as f64).sin() * (count as f64).cos();
                            std::hint::black_box(acc);
                        }
                        count += 1;
                        if count == rounds {
                            let _ = done.send(());
                        }
                    }
                }
            }))
        })
        .collect();
    let start = Instant::now();
    let send = move || {
        for _ in 0..rounds {
            for w in &workers {
                root.send(w, Work);
            }
        }
        if std::env::var_os("PROFILE_SCHED").is_some() {
            println!("sent in {:?}", start.elapsed());
        }
    };
    if in_task {
        let rt = system.runtime();
        rt.block_on(rt.spawn(async move { send() }))
            .expect("driver task");
    } else {
        send();
    }
    for _ in 0..60 {
        rx.recv_timeout(TIMEOUT).expect("fork-join");
    }
    rounds * 60
}

struct Msg {
    sender: Pid,
}
struct Start(Pid);

fn in_process(system: &ActorSystem, n: u64) -> u64 {
    const PAIRS: u64 = 4;
    const BURST: u64 = 100;
    let root = system.root();
    let (tx, rx) = channel::<()>();
    let mailbox = MailboxConfig::bounded(BURST as usize + 10);
    let echo = Props::from_func(|ctx| {
        if let Some(Msg { sender }) = ctx.take_message::<Msg>() {
            let me = ctx.self_pid().clone();
            ctx.send(&sender, Msg { sender: me });
        }
    })
    .with_mailbox(mailbox.clone());
    let pairs: Vec<(Pid, Pid)> = (0..PAIRS)
        .map(|_| {
            let done: Sender<()> = tx.clone();
            let ping = Props::from_producer(move || {
                let (done, mut remaining, mut in_flight) = (done.clone(), n, 0u64);
                move |ctx: &mut Context| {
                    let target = if let Some(Start(echo)) = ctx.take_message::<Start>() {
                        echo
                    } else if let Some(Msg { sender }) = ctx.take_message::<Msg>() {
                        in_flight -= 1;
                        if in_flight > 0 {
                            return;
                        }
                        sender
                    } else {
                        return;
                    };
                    if remaining == 0 {
                        let _ = done.send(());
                        return;
                    }
                    let burst = BURST.min(remaining);
                    for _ in 0..burst {
                        let me = ctx.self_pid().clone();
                        ctx.send(&target, Msg { sender: me });
                    }
                    remaining -= burst;
                    in_flight = burst;
                }
            })
            .with_mailbox(mailbox.clone());
            (root.spawn(&ping), root.spawn(&echo))
        })
        .collect();
    for (ping, echo) in &pairs {
        root.send(ping, Start(echo.clone()));
    }
    for _ in 0..PAIRS {
        rx.recv_timeout(TIMEOUT).expect("in-process");
    }
    2 * n * PAIRS
}

struct Ball;
struct Serve(Pid);

fn ping_pong(system: &ActorSystem, n: u64) -> u64 {
    let root = system.root();
    let (tx, rx) = channel::<()>();
    let moves = profile_sched();
    let pong = root.spawn(&Props::from_func(move |ctx| {
        if ctx.message().is::<Ball>() {
            if moves {
                note_thread();
            }
            if let Some(s) = ctx.sender().cloned() {
                ctx.request(&s, Ball);
            }
        }
    }));
    let pinger = root.spawn(&Props::from_producer(move || {
        let (done, mut left) = (tx.clone(), n);
        move |ctx: &mut Context| {
            if let Some(Serve(p)) = ctx.take_message::<Serve>() {
                ctx.request(&p, Ball);
            } else if ctx.message().is::<Ball>() {
                if moves {
                    note_thread();
                }
                left -= 1;
                if left == 0 {
                    let _ = done.send(());
                } else if let Some(s) = ctx.sender().cloned() {
                    ctx.request(&s, Ball);
                }
            }
        }
    }));
    root.send(&pinger, Serve(pong));
    rx.recv_timeout(TIMEOUT).expect("ping-pong");
    2 * n
}

struct RingToken(u64);
struct RingNext(Pid);

fn thread_ring(system: &ActorSystem, n: u64) -> u64 {
    const ACTORS: usize = 100;
    let root = system.root();
    let (tx, rx) = channel::<()>();
    let moves = profile_sched();
    let nodes: Vec<Pid> = (0..ACTORS)
        .map(|_| {
            let done = tx.clone();
            root.spawn(&Props::from_producer(move || {
                let (done, mut next) = (done.clone(), None::<Pid>);
                move |ctx: &mut Context| {
                    if let Some(&RingToken(left)) = ctx.message_as::<RingToken>() {
                        if moves {
                            note_thread();
                        }
                        match (left, &next) {
                            (0, _) | (_, None) => {
                                let _ = done.send(());
                            }
                            (left, Some(next)) => ctx.send(next, RingToken(left - 1)),
                        }
                    } else if let Some(RingNext(p)) = ctx.take_message::<RingNext>() {
                        next = Some(p);
                        ctx.respond(());
                    }
                }
            }))
        })
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        let next = nodes[(i + 1) % ACTORS].clone();
        root.request_future(node, RingNext(next), TIMEOUT)
            .wait()
            .expect("ring set-up");
    }
    root.send(&nodes[0], RingToken(n - 1));
    rx.recv_timeout(TIMEOUT).expect("thread-ring");
    n
}

/// The stored event (the `persistence` workload's `bench.Added`).
#[derive(Clone, PartialEq, prost::Message)]
struct Added {
    #[prost(int64, tag = "1")]
    amount: i64,
}
impl prost::Name for Added {
    const NAME: &'static str = "Added";
    const PACKAGE: &'static str = "bench";
    fn full_name() -> String {
        "bench.Added".into()
    }
}

struct Add;
struct AddBatch(usize);

#[derive(Default)]
struct Counter(i64);

impl Persistent for Counter {
    type Event = Added;
    type Snapshot = Added;
    fn apply_event(&mut self, e: Added, _: EventMeta) {
        self.0 += e.amount;
    }
    fn apply_snapshot(&mut self, s: Added, _: u64) {
        self.0 = s.amount;
    }
    fn snapshot(&self) -> Added {
        Added { amount: self.0 }
    }
    fn receive(&mut self, ctx: &mut Context, journal: &mut Journal<Self>) {
        if ctx.message().is::<Add>() {
            journal
                .persist_event(self, ctx, Added { amount: 1 })
                .expect("persist");
        } else if let Some(AddBatch(n)) = ctx.message_as::<AddBatch>() {
            let events = (0..*n).map(|_| Added { amount: 1 }).collect();
            journal.persist_events(self, ctx, events).expect("persist");
        } else if ctx.message().is::<Get>() {
            ctx.respond(self.0);
        }
    }
}

fn count(system: &ActorSystem, pid: &Pid) -> i64 {
    system
        .root()
        .request_future(pid, Get, TIMEOUT)
        .result_as::<i64>()
        .expect("count")
}

fn persist(system: &ActorSystem, n: u64) -> u64 {
    let provider: Arc<dyn Provider> = Arc::new(InMemoryProvider::new());
    let pid = system
        .root()
        .spawn(&Persistence::using(provider).props(Counter::default));
    for _ in 0..n {
        system.root().send(&pid, Add);
    }
    assert_eq!(count(system, &pid), n as i64);
    n
}

fn recover(system: &ActorSystem, n: u64) -> u64 {
    const JOURNAL: u64 = 1_000;
    let provider: Arc<dyn Provider> = Arc::new(InMemoryProvider::new());
    let props = Persistence::using(provider)
        .with_name("counter")
        .props(Counter::default);
    let writer = system.root().spawn(&props);
    for _ in 0..JOURNAL / 100 {
        system.root().send(&writer, AddBatch(100));
    }
    assert_eq!(count(system, &writer), JOURNAL as i64);
    system.root().stop(&writer);
    for _ in 0..n {
        let pid = system.root().spawn(&props);
        assert_eq!(count(system, &pid), JOURNAL as i64);
        system.root().stop(&pid);
    }
    n * JOURNAL
}

struct TreeReq {
    num: u64,
    size: u64,
}

/// A node of the `spawn` workload's tree (`SpawnNode` of `src/protoactor_rs.rs`).
struct SpawnNode {
    props: Props,
    from_root: bool,
    replies: u64,
    sum: i64,
    reply_to: Option<Pid>,
}

const FAN_OUT: u64 = 10;

impl Actor for SpawnNode {
    fn receive(&mut self, ctx: &mut Context) {
        if let Some(r) = ctx.message_as::<TreeReq>() {
            let (num, size) = (r.num, r.size);
            if size == 1 {
                ctx.respond(num as i64);
                if !self.from_root {
                    let me = ctx.self_pid().clone();
                    ctx.stop(&me);
                }
                return;
            }
            self.replies = FAN_OUT;
            self.reply_to = ctx.sender().cloned();
            let step = size / FAN_OUT;
            for i in 0..FAN_OUT {
                let child = if self.from_root {
                    ctx.system().root().spawn(&self.props)
                } else {
                    ctx.spawn(&self.props)
                };
                ctx.request(
                    &child,
                    TreeReq {
                        num: num + i * step,
                        size: step,
                    },
                );
            }
        } else if let Some(n) = ctx.message_as::<i64>() {
            self.sum += n;
            self.replies -= 1;
            if self.replies == 0 {
                if let Some(to) = &self.reply_to {
                    ctx.send(to, self.sum);
                }
            }
        }
    }
}

fn spawn_tree(system: &ActorSystem, leaves: u64, from_root: bool) -> u64 {
    // Each node splits its range in ten: any other size leaves some leaves out.
    let mut level = leaves;
    while level > 1 && level.is_multiple_of(FAN_OUT) {
        level /= FAN_OUT;
    }
    if leaves < FAN_OUT || level != 1 {
        eprintln!("spawn: the leaves must be a power of 10 (10, 100, 1000, ...), not {leaves}");
        std::process::exit(2);
    }
    let cell: Arc<std::sync::OnceLock<Props>> = Arc::default();
    let c = cell.clone();
    let props = Props::from_producer(move || SpawnNode {
        props: c.get().expect("set below").clone(),
        from_root,
        replies: 0,
        sum: 0,
        reply_to: None,
    });
    cell.set(props.clone()).ok();
    let root = system.root();
    let top = root.spawn(&props);
    let sum = root
        .request_future(
            &top,
            TreeReq {
                num: 0,
                size: leaves,
            },
            TIMEOUT,
        )
        .result_as::<i64>()
        .expect("spawn");
    assert_eq!(sum as u64, leaves * (leaves - 1) / 2);
    // Every node of the tree: n leaves, n/10 above them, ... up to the top.
    let (mut actors, mut level) = (0, leaves);
    while level >= 1 {
        actors += level;
        level /= FAN_OUT;
    }
    actors
}
