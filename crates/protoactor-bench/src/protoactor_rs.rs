//! The workloads on protoactor-rs (this project), written as a user of the crate would,
//! with the same mailboxes as the Go programs.
//!
//! Over 700 lines on purpose: every workload of one implementation in one file, so the
//! implementations read side by side (actix_impl.rs, kameo_impl.rs, ractor_impl.rs alike).

use std::any::Any;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protoactor::dispatcher::PinnedGroup;
use protoactor::prelude::*;

use crate::common::*;
use crate::framework::{drive, Driver, Framework, Timed};
use crate::spawn_stats::{self, Ev};

/// protoactor-rs: one actor system per workload run.
pub struct ProtoActor {
    system: ActorSystem,
}

impl Framework for ProtoActor {
    const NAME: &'static str = "protoactor-rs";
    fn start() -> Result<Self, String> {
        Ok(ProtoActor {
            system: spawn_stats::system(),
        })
    }
    fn stop(self) {
        self.system.shutdown();
    }
    fn extra(workload: &str, sizes: &[u64]) -> Option<RunResult> {
        // Starts its own actor systems: recovery needs a second one.
        match workload {
            "persistence" => Some(crate::persistence_rs::run(sizes)),
            "persistent-grains" => Some(crate::persistent_grains_rs::run(sizes)),
            _ => None,
        }
    }
    fn in_process(&self, pairs: u64, per_pair: u64, batch: u64, driver: Driver) -> Timed {
        in_process(&self.system, pairs, per_pair, batch, driver)
    }
    fn spawn_tree(&self, leaves: u64, div: u64) -> Timed {
        spawn_tree(&self.system, None, leaves, div, TreeShape::Children)
    }
    fn spawn_root(&self, leaves: u64, div: u64) -> Timed {
        spawn_tree(&self.system, None, leaves, div, TreeShape::FromRoot)
    }
    fn ping_pong(&self, n: u64) -> Timed {
        ping_pong(&self.system, None, n)
    }
    fn counting(&self, n: u64, driver: Driver) -> Timed {
        counting(&self.system, n, driver)
    }
    fn fork_join(&self, workers: u64, per_worker: u64, driver: Driver) -> Timed {
        fork_join(&self.system, workers, per_worker, driver)
    }
    fn thread_ring(&self, actors: u64, passes: u64) -> Timed {
        thread_ring(&self.system, None, actors, passes)
    }
    fn big(&self, actors: u64, pings: u64) -> Timed {
        big(&self.system, actors, pings)
    }
    fn chameneos(&self, creatures: u64, meetings: u64) -> Timed {
        chameneos(&self.system, creatures, meetings)
    }
    fn skynet(&self, leaves: u64, div: u64) -> Timed {
        skynet(&self.system, None, leaves, div)
    }
    fn request(&self, n: u64) -> RunResult {
        request(&self.system, n)
    }
    fn idle_actors(&self, n: u64) -> Result<Box<dyn Any>, String> {
        idle_actors(&self.system, n)
    }
}

/// protoactor-rs with the single-chain workloads' actors on one [`PinnedGroup`] (one
/// dedicated thread, as actix runs every actor of an `Arbiter`); the harness runs it only
/// on those rows (`harness::PINNED_WORKLOADS`).
pub struct ProtoActorPinned {
    system: ActorSystem,
    on: Dispatcher,
}

/// The other rows, which the pinned variant does not run.
fn not_pinned() -> String {
    "protoactor-rs-pinned runs only the single-chain rows".to_string()
}

impl Framework for ProtoActorPinned {
    const NAME: &'static str = "protoactor-rs-pinned";
    fn start() -> Result<Self, String> {
        let group = PinnedGroup::new("bench").map_err(|e| format!("pinned group: {e}"))?;
        Ok(ProtoActorPinned {
            system: ActorSystem::new(),
            on: Dispatcher::pinned(&group, protoactor::dispatcher::DEFAULT_THROUGHPUT),
        })
    }
    fn stop(self) {
        self.system.shutdown();
    }
    fn in_process(&self, _: u64, _: u64, _: u64, _: Driver) -> Timed {
        Err(not_pinned())
    }
    fn spawn_tree(&self, leaves: u64, div: u64) -> Timed {
        spawn_tree(
            &self.system,
            Some(&self.on),
            leaves,
            div,
            TreeShape::Children,
        )
    }
    fn spawn_root(&self, leaves: u64, div: u64) -> Timed {
        spawn_tree(
            &self.system,
            Some(&self.on),
            leaves,
            div,
            TreeShape::FromRoot,
        )
    }
    fn ping_pong(&self, n: u64) -> Timed {
        ping_pong(&self.system, Some(&self.on), n)
    }
    fn counting(&self, _: u64, _: Driver) -> Timed {
        Err(not_pinned())
    }
    fn fork_join(&self, _: u64, _: u64, _: Driver) -> Timed {
        Err(not_pinned())
    }
    fn thread_ring(&self, actors: u64, passes: u64) -> Timed {
        thread_ring(&self.system, Some(&self.on), actors, passes)
    }
    fn big(&self, _: u64, _: u64) -> Timed {
        Err(not_pinned())
    }
    fn chameneos(&self, _: u64, _: u64) -> Timed {
        Err(not_pinned())
    }
    fn skynet(&self, leaves: u64, div: u64) -> Timed {
        skynet(&self.system, Some(&self.on), leaves, div)
    }
    fn request(&self, _: u64) -> RunResult {
        Err(not_pinned())
    }
    fn idle_actors(&self, _: u64) -> Result<Box<dyn Any>, String> {
        Err(not_pinned())
    }
}

/// `props` on the dispatcher `on` if given, else on the default one.
fn on(props: Props, on: Option<&Dispatcher>) -> Props {
    match on {
        Some(d) => props.with_dispatcher(d.clone()),
        None => props,
    }
}

fn wait(rx: &std::sync::mpsc::Receiver<()>, n: u64, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + RUN_TIMEOUT;
    for _ in 0..n {
        let left = deadline.saturating_duration_since(Instant::now());
        rx.recv_timeout(left)
            .map_err(|_| format!("{what}: timed out"))?;
    }
    Ok(())
}

// ------------------------------------------------------------------ in-process

/// protoactor-go's in-process message: a fresh one each way, carrying its sender, which
/// the receiver answers to with `send` (no request/response sender header).
struct IpMsg {
    sender: Pid,
}
struct IpStart(Pid);

struct IpPing {
    remaining: u64,
    in_flight: u64,
    batch: u64,
    done: Sender<()>,
}

impl IpPing {
    fn send_batch(&mut self, ctx: &mut Context, echo: &Pid) -> bool {
        if self.remaining == 0 {
            return false;
        }
        for _ in 0..self.batch {
            let sender = ctx.self_pid().clone();
            ctx.send(echo, IpMsg { sender });
        }
        self.remaining -= self.batch;
        self.in_flight = self.batch;
        true
    }
}

impl Actor for IpPing {
    fn receive(&mut self, ctx: &mut Context) {
        if let Some(IpStart(echo)) = ctx.take_message::<IpStart>() {
            self.send_batch(ctx, &echo);
        } else if let Some(IpMsg { sender }) = ctx.take_message::<IpMsg>() {
            self.in_flight -= 1;
            if self.in_flight == 0 && !self.send_batch(ctx, &sender) {
                let _ = self.done.send(());
            }
        }
    }
}

fn in_process(
    system: &ActorSystem,
    pairs: u64,
    per_pair: u64,
    batch: u64,
    driver: Driver,
) -> Timed {
    let root = system.root();
    let (tx, rx) = channel();
    let mailbox = MailboxConfig::bounded(batch as usize + 10);
    let echo_props = Props::from_func(|ctx| {
        if let Some(IpMsg { sender }) = ctx.take_message::<IpMsg>() {
            let me = ctx.self_pid().clone();
            ctx.send(&sender, IpMsg { sender: me });
        }
    })
    .with_mailbox(mailbox.clone());
    let mut actors = Vec::new();
    for _ in 0..pairs {
        let done = tx.clone();
        let ping = root.spawn(
            &Props::from_producer(move || IpPing {
                remaining: per_pair,
                in_flight: 0,
                batch,
                done: done.clone(),
            })
            .with_mailbox(mailbox.clone()),
        );
        actors.push((ping, root.spawn(&echo_props)));
    }
    let start = drive(system.runtime(), driver, move || {
        let start = Instant::now();
        for (ping, echo) in &actors {
            root.send(ping, IpStart(echo.clone()));
        }
        start
    })?;
    wait(&rx, pairs, "in-process")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ spawn

struct TreeReq {
    num: u64,
    size: u64,
    div: u64,
}

/// Where the spawn workload's nodes spawn their children, and whether leaves stop.
#[derive(Clone, Copy, PartialEq)]
enum TreeShape {
    /// The harness's tree: each node spawns its children as its own; leaves stop.
    Children,
    /// protoactor-go's spawn benchmark: every node spawns from the root, nothing stops.
    FromRoot,
}

struct SpawnNode {
    props: Props,
    shape: TreeShape,
    replies: u64,
    sum: i64,
    reply_to: Option<Pid>,
    /// The thread that spawned this node, and the one that spawned its children (the
    /// `spawn-stats` feature's; no size without it).
    born: spawn_stats::Born,
    bore: spawn_stats::Born,
}

impl SpawnNode {
    /// The `spawn-stats` feature's counts of the lifecycle messages.
    fn count_lifecycle(&self, ctx: &Context) {
        spawn_stats::count(Ev::Msgs);
        let m = ctx.message();
        if m.is::<Started>() {
            spawn_stats::count_where(Ev::Started, Ev::StartedAway, self.born);
        } else if m.is::<Stopped>() {
            spawn_stats::count_where(Ev::Stopped, Ev::StoppedAway, self.born);
        } else if m.is::<Terminated>() {
            spawn_stats::count_where(Ev::Terminated, Ev::TerminatedAway, self.bore);
        }
    }
}

impl Actor for SpawnNode {
    fn receive(&mut self, ctx: &mut Context) {
        if cfg!(feature = "spawn-stats") {
            self.count_lifecycle(ctx);
        }
        if let Some(r) = ctx.message_as::<TreeReq>() {
            spawn_stats::count(Ev::Request);
            let (num, size, div) = (r.num, r.size, r.div);
            if size == 1 {
                ctx.respond(num as i64);
                if self.shape == TreeShape::Children {
                    let me = ctx.self_pid().clone();
                    ctx.stop(&me);
                }
                return;
            }
            self.replies = div;
            self.reply_to = ctx.sender().cloned();
            self.bore = spawn_stats::slot();
            let step = size / div;
            for i in 0..div {
                spawn_stats::count(Ev::Spawned);
                let child = match self.shape {
                    TreeShape::Children => ctx.spawn(&self.props),
                    TreeShape::FromRoot => ctx.system().root().spawn(&self.props),
                };
                ctx.request(
                    &child,
                    TreeReq {
                        num: num + i * step,
                        size: step,
                        div,
                    },
                );
            }
        } else if let Some(n) = ctx.message_as::<i64>() {
            spawn_stats::count(Ev::Reply);
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

fn node_props<A: Actor>(
    d: Option<&Dispatcher>,
    make: impl Fn(Props) -> A + Send + Sync + 'static,
) -> Props {
    // The producer needs the props it belongs to, for spawning children of the same kind.
    let cell: Arc<std::sync::OnceLock<Props>> = Arc::default();
    let c = cell.clone();
    let props = on(
        Props::from_producer(move || make(c.get().expect("set below").clone())),
        d,
    );
    cell.set(props.clone()).ok();
    props
}

fn spawn_tree(
    system: &ActorSystem,
    d: Option<&Dispatcher>,
    leaves: u64,
    div: u64,
    shape: TreeShape,
) -> Timed {
    let props = node_props(d, move |props| SpawnNode {
        props,
        shape,
        replies: 0,
        sum: 0,
        reply_to: None,
        born: spawn_stats::slot(),
        bore: spawn_stats::slot(),
    });
    #[cfg(feature = "spawn-stats")]
    let (counted, rt_counted) = (
        spawn_stats::snapshot(),
        spawn_stats::runtime_snapshot(system.runtime()),
    );
    let start = Instant::now();
    let root = system.root();
    spawn_stats::count(Ev::Spawned);
    let top = root.spawn(&props);
    let sum = root
        .request_future(
            &top,
            TreeReq {
                num: 0,
                size: leaves,
                div,
            },
            RUN_TIMEOUT,
        )
        .result_as::<i64>()
        .map_err(|e| format!("spawn: {e}"))?;
    let took = start.elapsed();
    #[cfg(feature = "spawn-stats")]
    {
        let label = match shape {
            TreeShape::Children => "spawn",
            TreeShape::FromRoot => "spawn-root",
        };
        spawn_stats::report(label, took, &counted, system.runtime(), &rt_counted);
    }
    if sum != expected_sum(leaves) {
        return Err(format!("spawn: wrong sum {sum}"));
    }
    Ok(took)
}

// ------------------------------------------------------------------ savina ping-pong

struct PpPing;
struct PpPong;
struct PpStart(Pid);

struct Pinger {
    pong: Option<Pid>,
    left: u64,
    done: Sender<()>,
}

impl Actor for Pinger {
    fn receive(&mut self, ctx: &mut Context) {
        if let Some(PpStart(pong)) = ctx.take_message::<PpStart>() {
            ctx.request(&pong, PpPing);
            self.pong = Some(pong);
        } else if ctx.message().is::<PpPong>() {
            self.left -= 1;
            if self.left == 0 {
                let _ = self.done.send(());
            } else if let Some(pong) = &self.pong {
                ctx.request(pong, PpPing);
            }
        }
    }
}

fn ping_pong(system: &ActorSystem, d: Option<&Dispatcher>, n: u64) -> Timed {
    let root = system.root();
    let pong = root.spawn(&on(
        Props::from_func(|ctx| {
            if ctx.message().is::<PpPing>() {
                ctx.respond(PpPong);
            }
        }),
        d,
    ));
    let (tx, rx) = channel();
    let ping = root.spawn(&on(
        Props::from_producer(move || Pinger {
            pong: None,
            left: n,
            done: tx.clone(),
        }),
        d,
    ));
    // As in every implementation: both actors exist, the window starts with the start message.
    let start = Instant::now();
    root.send(&ping, PpStart(pong));
    wait(&rx, 1, "ping-pong")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ savina counting

struct Inc;
struct Get;

struct Counter(u64);

impl Actor for Counter {
    fn receive(&mut self, ctx: &mut Context) {
        let msg = ctx.message();
        if msg.is::<Inc>() {
            self.0 += 1;
        } else if msg.is::<Get>() {
            ctx.respond(self.0);
        }
    }
}

fn counting(system: &ActorSystem, n: u64, driver: Driver) -> Timed {
    let root = system.root();
    let counter = root.spawn(&Props::from_producer(|| Counter(0)));
    let send = move || {
        let start = Instant::now();
        for _ in 0..n {
            root.send(&counter, Inc);
        }
        (start, root, counter)
    };
    // The request for the count: blocked on outside, awaited by the driver task (as Go's
    // main goroutine blocks on its `Result()`).
    let rt = system.runtime();
    let (took, got) = match driver {
        Driver::Outside => {
            let (start, root, counter) = send();
            let got = root
                .request_future(&counter, Get, RUN_TIMEOUT)
                .result_as::<u64>();
            (start.elapsed(), got)
        }
        Driver::Task => rt
            .block_on(rt.spawn(async move {
                let (start, root, counter) = send();
                let got = root
                    .request_future(&counter, Get, RUN_TIMEOUT)
                    .into_typed::<u64>()
                    .await;
                (start.elapsed(), got)
            }))
            .map_err(|e| format!("counting: driver task: {e}"))?,
    };
    let got = got.map_err(|e| format!("counting: {e}"))?;
    if got != n {
        return Err(format!("counting: counted {got} of {n}"));
    }
    Ok(took)
}

// ------------------------------------------------------------------ savina fork-join

struct FjMsg;

struct FjWorker {
    count: u64,
    acc: f64,
    per_worker: u64,
    done: Sender<()>,
}

impl Actor for FjWorker {
    fn receive(&mut self, ctx: &mut Context) {
        if ctx.message().is::<FjMsg>() {
            self.acc += work(self.count as f64);
            self.count += 1;
            if self.count == self.per_worker {
                std::hint::black_box(self.acc);
                let _ = self.done.send(());
            }
        }
    }
}

fn fork_join(system: &ActorSystem, workers: u64, per_worker: u64, driver: Driver) -> Timed {
    let root = system.root();
    let (tx, rx) = channel();
    let pids: Vec<Pid> = (0..workers)
        .map(|_| {
            let done = tx.clone();
            root.spawn(&Props::from_producer(move || FjWorker {
                count: 0,
                acc: 0.0,
                per_worker,
                done: done.clone(),
            }))
        })
        .collect();
    let start = drive(system.runtime(), driver, move || {
        let start = Instant::now();
        for _ in 0..per_worker {
            for p in &pids {
                root.send(p, FjMsg);
            }
        }
        start
    })?;
    wait(&rx, workers, "fork-join")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ savina thread ring

struct Next(Pid);
struct Token(u64);

struct RingNode {
    next: Option<Pid>,
    done: Sender<()>,
}

impl Actor for RingNode {
    fn receive(&mut self, ctx: &mut Context) {
        if let Some(Token(left)) = ctx.message_as::<Token>() {
            let left = *left;
            if left == 0 {
                let _ = self.done.send(());
            } else if let Some(next) = &self.next {
                ctx.send(next, Token(left - 1));
            }
        } else if let Some(Next(n)) = ctx.message_as::<Next>() {
            self.next = Some(n.clone());
        }
    }
}

fn thread_ring(system: &ActorSystem, d: Option<&Dispatcher>, actors: u64, passes: u64) -> Timed {
    let root = system.root();
    let (tx, rx) = channel();
    let pids: Vec<Pid> = (0..actors)
        .map(|_| {
            let done = tx.clone();
            root.spawn(&on(
                Props::from_producer(move || RingNode {
                    next: None,
                    done: done.clone(),
                }),
                d,
            ))
        })
        .collect();
    for (i, p) in pids.iter().enumerate() {
        root.send(p, Next(pids[(i + 1) % pids.len()].clone()));
    }
    let start = Instant::now();
    root.send(&pids[0], Token(passes));
    wait(&rx, 1, "thread-ring")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ savina big

struct BigStart(Arc<Vec<Pid>>);
struct BigPing;
struct BigPong;

struct BigNode {
    peers: Arc<Vec<Pid>>,
    rng: XorShift,
    sent: u64,
    pings: u64,
    done: Sender<()>,
}

impl BigNode {
    fn ping(&mut self, ctx: &mut Context) {
        self.sent += 1;
        let peer = &self.peers[self.rng.next(self.peers.len())];
        ctx.request(peer, BigPing);
    }
}

impl Actor for BigNode {
    fn receive(&mut self, ctx: &mut Context) {
        let msg = ctx.message();
        if msg.is::<BigPing>() {
            ctx.respond(BigPong);
        } else if msg.is::<BigPong>() {
            if self.sent == self.pings {
                let _ = self.done.send(());
            } else {
                self.ping(ctx);
            }
        } else if let Some(BigStart(peers)) = ctx.message_as::<BigStart>() {
            self.peers = peers.clone();
            self.ping(ctx);
        }
    }
}

fn big(system: &ActorSystem, actors: u64, pings: u64) -> Timed {
    let root = system.root();
    let (tx, rx) = channel();
    let pids: Arc<Vec<Pid>> = Arc::new(
        (0..actors as usize)
            .map(|i| {
                let done = tx.clone();
                root.spawn(&Props::from_producer(move || BigNode {
                    peers: Arc::default(),
                    rng: XorShift::for_actor(i),
                    sent: 0,
                    pings,
                    done: done.clone(),
                }))
            })
            .collect(),
    );
    let start = Instant::now();
    for p in pids.iter() {
        root.send(p, BigStart(pids.clone()));
    }
    wait(&rx, actors, "big")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ savina chameneos

struct Meet {
    color: u8,
    who: Pid,
}
struct Mate(u8);
struct ChStart;
struct ChStop;

struct Mall {
    waiting: Option<Meet>,
    done: u64,
    meetings: u64,
    finished: Sender<()>,
}

impl Actor for Mall {
    fn receive(&mut self, ctx: &mut Context) {
        let Some(m) = ctx.take_message::<Meet>() else {
            return;
        };
        if self.done == self.meetings {
            ctx.send(&m.who, ChStop);
            return;
        }
        match self.waiting.take() {
            None => self.waiting = Some(m),
            Some(w) => {
                self.done += 1;
                ctx.send(&w.who, Mate(m.color));
                ctx.send(&m.who, Mate(w.color));
                if self.done == self.meetings {
                    let _ = self.finished.send(());
                }
            }
        }
    }
}

struct Creature {
    color: u8,
    mall: Pid,
}

impl Actor for Creature {
    fn receive(&mut self, ctx: &mut Context) {
        if let Some(Mate(other)) = ctx.message_as::<Mate>() {
            self.color = complement(self.color, *other);
        } else if !ctx.message().is::<ChStart>() {
            return;
        }
        let me = ctx.self_pid().clone();
        ctx.send(
            &self.mall,
            Meet {
                color: self.color,
                who: me,
            },
        );
    }
}

fn chameneos(system: &ActorSystem, creatures: u64, meetings: u64) -> Timed {
    let root = system.root();
    let (tx, rx) = channel();
    let mall = root.spawn(&Props::from_producer(move || Mall {
        waiting: None,
        done: 0,
        meetings,
        finished: tx.clone(),
    }));
    let pids: Vec<Pid> = (0..creatures)
        .map(|i| {
            let mall = mall.clone();
            root.spawn(&Props::from_producer(move || Creature {
                color: (i % 3) as u8,
                mall: mall.clone(),
            }))
        })
        .collect();
    let start = Instant::now();
    for p in &pids {
        root.send(p, ChStart);
    }
    wait(&rx, 1, "chameneos")?;
    let took = start.elapsed();
    let _ = ChStop; // creatures ignore the stop message
    Ok(took)
}

// ------------------------------------------------------------------ skynet

struct SkyNode {
    props: Props,
    replies: u64,
    sum: i64,
}

impl Actor for SkyNode {
    fn receive(&mut self, ctx: &mut Context) {
        if let Some(r) = ctx.message_as::<TreeReq>() {
            let (num, size, div) = (r.num, r.size, r.div);
            if size == 1 {
                if let Some(parent) = ctx.parent() {
                    ctx.send(parent, num as i64);
                }
                let me = ctx.self_pid().clone();
                ctx.stop(&me);
                return;
            }
            self.replies = div;
            let step = size / div;
            for i in 0..div {
                let child = ctx.spawn(&self.props);
                ctx.send(
                    &child,
                    TreeReq {
                        num: num + i * step,
                        size: step,
                        div,
                    },
                );
            }
        } else if let Some(n) = ctx.message_as::<i64>() {
            spawn_stats::count(Ev::Reply);
            self.sum += n;
            self.replies -= 1;
            if self.replies == 0 {
                if let Some(parent) = ctx.parent() {
                    ctx.send(parent, self.sum);
                }
                let me = ctx.self_pid().clone();
                ctx.stop(&me);
            }
        }
    }
}

fn skynet(system: &ActorSystem, d: Option<&Dispatcher>, leaves: u64, div: u64) -> Timed {
    let props = node_props(d, |props| SkyNode {
        props,
        replies: 0,
        sum: 0,
    });
    let (tx, rx) = channel::<i64>();
    let tx = std::sync::Mutex::new(tx);
    let start = Instant::now();
    let top = Props::from_func(move |ctx| {
        if ctx.message().is::<Started>() {
            let child = ctx.spawn(&props);
            ctx.send(
                &child,
                TreeReq {
                    num: 0,
                    size: leaves,
                    div,
                },
            );
        } else if let Some(sum) = ctx.message_as::<i64>() {
            let _ = tx.lock().expect("not poisoned").send(*sum);
        }
    });
    system.root().spawn(&on(top, d));
    let sum = rx
        .recv_timeout(RUN_TIMEOUT)
        .map_err(|_| "skynet: timed out".to_string())?;
    let took = start.elapsed();
    if sum != expected_sum(leaves) {
        return Err(format!("skynet: wrong sum {sum}"));
    }
    Ok(took)
}

// ------------------------------------------------------------------ request latency

fn request(system: &ActorSystem, n: u64) -> RunResult {
    let root = system.root();
    let echo = root.spawn(&Props::from_func(|ctx| {
        if let Some(i) = ctx.message_as::<u64>() {
            ctx.respond(*i);
        }
    }));
    // The row compared with Go, kameo, ractor and actix: the requester is a task on the
    // system's runtime, as Go's is a goroutine on a P (and kameo's and ractor's a task on
    // theirs), awaiting `request_async` (sent by the await, as kameo's `ask` is), so an
    // idle echo's turn runs in the requester's task. Then the same task awaiting
    // `request_future` (sent at once, the echo's task woken, the reply waking the
    // requester's task): the form of the `request` row before `request_async`.
    let mut metrics = Vec::new();
    for (lazy, name) in [(true, "request"), (false, "request-future")] {
        let task = {
            let (root, echo) = (root.clone(), echo.clone());
            system
                .runtime()
                .spawn(async move { await_round_trips(&root, &echo, n, lazy).await })
        };
        let mut lat = system
            .runtime()
            .block_on(task)
            .map_err(|e| format!("request: {e}"))??;
        metrics.extend(latency_metrics_named(name, &mut lat));
    }
    // The same `.await` driven by `block_on` on the main thread, outside the runtime: each
    // round trip wakes a parked worker for the echo and then the main thread for the reply.
    let mut lat = system
        .runtime()
        .block_on(await_round_trips(&root, &echo, n, false))?;
    metrics.extend(latency_metrics_named("request-outside", &mut lat));
    // The blocking `result()` of a plain thread: two OS thread wake-ups per round trip.
    let mut lat = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        let got = root
            .request_future(&echo, i, Duration::from_secs(5))
            .result_as::<u64>()
            .map_err(|e| format!("request: {e}"))?;
        lat.push(t.elapsed());
        check_echo(got, i)?;
    }
    metrics.extend(latency_metrics_named("request-blocking", &mut lat));
    let mut lat = actor_round_trips(system, &echo, n)?;
    metrics.extend(latency_metrics_named("request-actor", &mut lat));
    Ok(metrics)
}

fn check_echo(got: u64, i: u64) -> Result<(), String> {
    if got == i {
        Ok(())
    } else {
        Err(format!("request: got {got} for {i}"))
    }
}

/// `n` sequential round trips to `echo`, each `request_async(..).await` (`lazy`) or
/// `request_future(..).await`: their latencies.
async fn await_round_trips(
    root: &RootContext,
    echo: &Pid,
    n: u64,
    lazy: bool,
) -> Result<Vec<Duration>, String> {
    let mut lat = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        let got = if lazy {
            root.request_async(echo, i, Duration::from_secs(5)).await
        } else {
            root.request_future(echo, i, Duration::from_secs(5)).await
        }
        .map_err(|e| format!("request: {e}"))?;
        lat.push(t.elapsed());
        check_echo(*got.downcast_ref::<u64>().ok_or("request: not a u64")?, i)?;
    }
    Ok(lat)
}

/// The requester of the `request-actor` row: an actor that requests with `ctx.request`
/// and gets the reply as a message (protoactor-go's `ctx.Request` idiom), then requests
/// the next.
struct Requester {
    echo: Pid,
    n: u64,
    next: u64,
    sent: Instant,
    lat: Vec<Duration>,
    done: Sender<Result<Vec<Duration>, String>>,
}

impl Requester {
    fn request_next(&mut self, ctx: &mut Context) {
        if self.next == self.n {
            let _ = self.done.send(Ok(std::mem::take(&mut self.lat)));
            return;
        }
        self.sent = Instant::now();
        ctx.request(&self.echo, self.next);
    }
}

impl Actor for Requester {
    fn receive(&mut self, ctx: &mut Context) {
        if ctx.message().is::<Started>() {
            self.request_next(ctx);
        } else if let Some(&got) = ctx.message_as::<u64>() {
            self.lat.push(self.sent.elapsed());
            if got != self.next {
                let _ = self
                    .done
                    .send(Err(format!("request-actor: got {got} for {}", self.next)));
                return;
            }
            self.next += 1;
            self.request_next(ctx);
        }
    }
}

fn actor_round_trips(system: &ActorSystem, echo: &Pid, n: u64) -> Result<Vec<Duration>, String> {
    let (tx, rx) = channel();
    let echo = echo.clone();
    let requester = system
        .root()
        .spawn(&Props::from_producer(move || Requester {
            echo: echo.clone(),
            n,
            next: 0,
            sent: Instant::now(),
            lat: Vec::with_capacity(n as usize),
            done: tx.clone(),
        }));
    let r = rx
        .recv_timeout(RUN_TIMEOUT)
        .map_err(|_| "request-actor: timed out".to_string())?;
    system.root().stop(&requester);
    r
}

// ------------------------------------------------------------------ idle memory

fn idle_actors(system: &ActorSystem, n: u64) -> Result<Box<dyn Any>, String> {
    let root = system.root();
    let props = Props::from_func(|ctx| {
        if let Some(i) = ctx.message_as::<u64>() {
            ctx.respond(*i);
        }
    });
    let pids: Vec<Pid> = (0..n).map(|_| root.spawn(&props)).collect();
    for (i, p) in pids.iter().enumerate() {
        let got = root
            .request_future(p, i as u64, RUN_TIMEOUT)
            .result_as::<u64>()
            .map_err(|e| format!("idle-memory: {e}"))?;
        if got != i as u64 {
            return Err(format!("idle-memory: got {got} for {i}"));
        }
    }
    Ok(Box::new(pids))
}
