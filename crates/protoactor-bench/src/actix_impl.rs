//! The local workloads on actix, written the actix way: `Handler<M>` impls, `do_send` for
//! one-way messages and `send(..).await` for the request round trip. actix runs each
//! arbiter on one thread; the throughput workloads that can use every core (in-process,
//! fork-join) spread their actors over one arbiter per core, the others run on the system
//! arbiter as a typical actix program does.
//!
//! Over 700 lines on purpose: every workload of one implementation in one file, so the
//! implementations read side by side (kameo_impl.rs, ractor_impl.rs, protoactor_rs.rs alike).

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::common::*;
use crate::framework::{Driver, Framework, Timed};

type Done = UnboundedSender<()>;

/// actix: a `System` whose arbiter runs each workload's future to completion.
pub struct Actix {
    sys: SystemRunner,
}

impl Framework for Actix {
    const NAME: &'static str = "actix";
    fn start() -> Result<Self, String> {
        Ok(Actix { sys: System::new() })
    }
    fn in_process(&self, pairs: u64, per_pair: u64, batch: u64, driver: Driver) -> Timed {
        self.sys
            .block_on(in_process(pairs, per_pair, batch, driver))
    }
    fn spawn_tree(&self, leaves: u64, div: u64) -> Timed {
        self.sys.block_on(tree(leaves, div, Shape::Spawn))
    }
    fn spawn_root(&self, leaves: u64, div: u64) -> Timed {
        self.sys.block_on(tree(leaves, div, Shape::SpawnKeepLeaves))
    }
    fn ping_pong(&self, n: u64) -> Timed {
        self.sys.block_on(ping_pong(n))
    }
    fn counting(&self, n: u64, driver: Driver) -> Timed {
        self.sys.block_on(counting(n, driver))
    }
    fn fork_join(&self, workers: u64, per_worker: u64, driver: Driver) -> Timed {
        self.sys.block_on(fork_join(workers, per_worker, driver))
    }
    fn thread_ring(&self, actors: u64, passes: u64) -> Timed {
        self.sys.block_on(thread_ring(actors, passes))
    }
    fn big(&self, actors: u64, pings: u64) -> Timed {
        self.sys.block_on(big(actors, pings))
    }
    fn chameneos(&self, creatures: u64, meetings: u64) -> Timed {
        self.sys.block_on(chameneos(creatures, meetings))
    }
    fn skynet(&self, leaves: u64, div: u64) -> Timed {
        self.sys.block_on(tree(leaves, div, Shape::Skynet))
    }
    fn request(&self, n: u64) -> RunResult {
        self.sys.block_on(request(n))
    }
    fn idle_actors(&self, n: u64) -> Result<Box<dyn Any>, String> {
        self.sys.block_on(idle_actors(n))
    }
}

async fn wait(rx: &mut UnboundedReceiver<()>, n: u64, what: &str) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
    for _ in 0..n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(())) => {}
            _ => return Err(format!("{what}: timed out")),
        }
    }
    Ok(())
}

/// Runs `send`, the driver's sending (returning when the window started), where `driver`
/// says: here, on the system arbiter (actix's task shape: a future on an arbiter of the
/// system, as every actix program sends), or on a plain thread of its own, which the
/// system arbiter waits for (the `-outside` rows).
fn drive<R: Send + 'static>(driver: Driver, send: impl FnOnce() -> R + Send + 'static) -> R {
    match driver {
        Driver::Task => send(),
        Driver::Outside => std::thread::scope(|s| s.spawn(send).join())
            .unwrap_or_else(|p| std::panic::resume_unwind(p)),
    }
}

/// One arbiter (thread) per core.
fn arbiters() -> Vec<Arbiter> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (0..n).map(|_| Arbiter::new()).collect()
}

macro_rules! message {
    ($($m:ty => $r:ty),* $(,)?) => {
        $(impl Message for $m { type Result = $r; })*
    };
}

macro_rules! actor {
    ($($a:ty),* $(,)?) => {
        $(impl Actor for $a { type Context = Context<Self>; })*
    };
}

// ------------------------------------------------------------------ in-process

/// protoactor-go's in-process messages: a fresh one each way, carrying its sender.
struct Ping(Addr<IpPing>);
struct Pong(Addr<IpEcho>);
struct IpStart(Addr<IpEcho>);
message!(Ping => (), Pong => (), IpStart => ());

struct IpPing {
    remaining: u64,
    in_flight: u64,
    batch: u64,
    done: Done,
}
struct IpEcho;
actor!(IpPing, IpEcho);

impl IpPing {
    fn send_batch(&mut self, echo: &Addr<IpEcho>, me: Addr<IpPing>) -> bool {
        if self.remaining == 0 {
            return false;
        }
        for _ in 0..self.batch {
            echo.do_send(Ping(me.clone()));
        }
        self.remaining -= self.batch;
        self.in_flight = self.batch;
        true
    }
}

impl Handler<IpStart> for IpPing {
    type Result = ();
    fn handle(&mut self, IpStart(echo): IpStart, ctx: &mut Context<Self>) {
        self.send_batch(&echo, ctx.address());
    }
}

impl Handler<Pong> for IpPing {
    type Result = ();
    fn handle(&mut self, Pong(echo): Pong, ctx: &mut Context<Self>) {
        self.in_flight -= 1;
        if self.in_flight == 0 && !self.send_batch(&echo, ctx.address()) {
            let _ = self.done.send(());
        }
    }
}

impl Handler<Ping> for IpEcho {
    type Result = ();
    fn handle(&mut self, Ping(from): Ping, ctx: &mut Context<Self>) {
        from.do_send(Pong(ctx.address()));
    }
}

async fn in_process(pairs: u64, per_pair: u64, batch: u64, driver: Driver) -> Timed {
    let arbs = arbiters();
    let (tx, mut rx) = unbounded_channel();
    let actors: Vec<_> = (0..pairs as usize)
        .map(|i| {
            let arb = arbs[i % arbs.len()].handle();
            let done = tx.clone();
            let ping = IpPing::start_in_arbiter(&arb, move |ctx| {
                // as the Go benchmark's Bounded(batch + 10)
                ctx.set_mailbox_capacity(batch as usize + 10);
                IpPing {
                    remaining: per_pair,
                    in_flight: 0,
                    batch,
                    done,
                }
            });
            let echo = IpEcho::start_in_arbiter(&arb, move |ctx| {
                ctx.set_mailbox_capacity(batch as usize + 10);
                IpEcho
            });
            (ping, echo)
        })
        .collect();
    let start = drive(driver, move || {
        let start = Instant::now();
        for (ping, echo) in &actors {
            ping.do_send(IpStart(echo.clone()));
        }
        start
    });
    wait(&mut rx, pairs, "in-process").await?;
    let took = start.elapsed();
    for a in arbs {
        a.stop();
    }
    Ok(took)
}

// ------------------------------------------------------------------ spawn and skynet trees

struct TreeReq {
    num: u64,
    size: u64,
    div: u64,
}
struct Sum(i64);
message!(TreeReq => (), Sum => ());

/// Which tree: who stops when it has answered. actix actors have no parent, so the spawn
/// tree and protoactor-go's root-spawned tree differ only in the leaves stopping.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// Leaves stop.
    Spawn,
    /// Nothing stops (protoactor-go's spawn benchmark).
    SpawnKeepLeaves,
    /// Every node stops once it has answered.
    Skynet,
}

/// A tree node; children `do_send` their sums to the parent's address.
struct Node {
    parent: Option<Addr<Node>>,
    reply: Option<UnboundedSender<i64>>,
    replies: u64,
    sum: i64,
    shape: Shape,
}
actor!(Node);

impl Node {
    fn report(&mut self, v: i64) {
        if let Some(p) = &self.parent {
            p.do_send(Sum(v));
        } else if let Some(tx) = self.reply.take() {
            let _ = tx.send(v);
        }
    }
}

impl Handler<TreeReq> for Node {
    type Result = ();
    fn handle(&mut self, r: TreeReq, ctx: &mut Context<Self>) {
        if r.size == 1 {
            self.report(r.num as i64);
            if self.shape != Shape::SpawnKeepLeaves {
                ctx.stop();
            }
            return;
        }
        self.replies = r.div;
        let step = r.size / r.div;
        let me = ctx.address();
        for i in 0..r.div {
            let child = Node {
                parent: Some(me.clone()),
                reply: None,
                replies: 0,
                sum: 0,
                shape: self.shape,
            }
            .start();
            child.do_send(TreeReq {
                num: r.num + i * step,
                size: step,
                div: r.div,
            });
        }
    }
}

impl Handler<Sum> for Node {
    type Result = ();
    fn handle(&mut self, Sum(v): Sum, ctx: &mut Context<Self>) {
        self.sum += v;
        self.replies -= 1;
        if self.replies == 0 {
            self.report(self.sum);
            if self.shape == Shape::Skynet {
                ctx.stop();
            }
        }
    }
}

async fn tree(leaves: u64, div: u64, shape: Shape) -> Timed {
    let (tx, mut rx) = unbounded_channel();
    let start = Instant::now();
    let top = Node {
        parent: None,
        reply: Some(tx),
        replies: 0,
        sum: 0,
        shape,
    }
    .start();
    top.do_send(TreeReq {
        num: 0,
        size: leaves,
        div,
    });
    let sum = match tokio::time::timeout(RUN_TIMEOUT, rx.recv()).await {
        Ok(Some(s)) => s,
        _ => return Err("tree: timed out".into()),
    };
    let took = start.elapsed();
    if sum != expected_sum(leaves) {
        return Err(format!("tree: wrong sum {sum}"));
    }
    Ok(took)
}

// ------------------------------------------------------------------ savina ping-pong

struct PpStart(Addr<Ponger>);
struct PpPing(Addr<Pinger>);
struct PpPong;
message!(PpStart => (), PpPing => (), PpPong => ());

struct Pinger {
    pong: Option<Addr<Ponger>>,
    left: u64,
    done: Done,
}
struct Ponger;
actor!(Pinger, Ponger);

impl Handler<PpStart> for Pinger {
    type Result = ();
    fn handle(&mut self, PpStart(p): PpStart, ctx: &mut Context<Self>) {
        p.do_send(PpPing(ctx.address()));
        self.pong = Some(p);
    }
}

impl Handler<PpPong> for Pinger {
    type Result = ();
    fn handle(&mut self, _: PpPong, ctx: &mut Context<Self>) {
        self.left -= 1;
        if self.left == 0 {
            let _ = self.done.send(());
        } else if let Some(p) = &self.pong {
            p.do_send(PpPing(ctx.address()));
        }
    }
}

impl Handler<PpPing> for Ponger {
    type Result = ();
    fn handle(&mut self, PpPing(from): PpPing, _: &mut Context<Self>) {
        from.do_send(PpPong);
    }
}

async fn ping_pong(n: u64) -> Timed {
    let (tx, mut rx) = unbounded_channel();
    let pong = Ponger.start();
    let ping = Pinger {
        pong: None,
        left: n,
        done: tx,
    }
    .start();
    let start = Instant::now();
    ping.do_send(PpStart(pong));
    wait(&mut rx, 1, "ping-pong").await?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ savina counting

struct Inc;
struct Get;
message!(Inc => (), Get => u64);

struct Counter(u64);
actor!(Counter);

impl Handler<Inc> for Counter {
    type Result = ();
    fn handle(&mut self, _: Inc, _: &mut Context<Self>) {
        self.0 += 1;
    }
}

impl Handler<Get> for Counter {
    type Result = u64;
    fn handle(&mut self, _: Get, _: &mut Context<Self>) -> u64 {
        self.0
    }
}

async fn counting(n: u64, driver: Driver) -> Timed {
    // The counter on an arbiter (thread) of its own and the sender on this one: one sender
    // and one receiver on two threads, as in the other implementations (the sender is
    // protoactor-go's main goroutine, a task on the runtime for protoactor-rs, kameo and
    // ractor). On one arbiter all sends would be queued before the counter ran at all.
    let arb = Arbiter::new();
    let counter = Counter::start_in_arbiter(&arb.handle(), |_| Counter(0));
    let sender = counter.clone();
    let start = drive(driver, move || {
        let start = Instant::now();
        for _ in 0..n {
            sender.do_send(Inc);
        }
        start
    });
    let got = counter
        .send(Get)
        .await
        .map_err(|e| format!("counting: {e}"))?;
    let took = start.elapsed();
    arb.stop();
    if got != n {
        return Err(format!("counting: counted {got} of {n}"));
    }
    Ok(took)
}

// ------------------------------------------------------------------ savina fork-join

struct FjMsg;
message!(FjMsg => ());

struct FjWorker {
    count: u64,
    acc: f64,
    per_worker: u64,
    done: Done,
}
actor!(FjWorker);

impl Handler<FjMsg> for FjWorker {
    type Result = ();
    fn handle(&mut self, _: FjMsg, _: &mut Context<Self>) {
        self.acc += work(self.count as f64);
        self.count += 1;
        if self.count == self.per_worker {
            std::hint::black_box(self.acc);
            let _ = self.done.send(());
        }
    }
}

async fn fork_join(workers: u64, per_worker: u64, driver: Driver) -> Timed {
    let arbs = arbiters();
    let (tx, mut rx) = unbounded_channel();
    let addrs: Vec<_> = (0..workers as usize)
        .map(|i| {
            let done = tx.clone();
            FjWorker::start_in_arbiter(&arbs[i % arbs.len()].handle(), move |_| FjWorker {
                count: 0,
                acc: 0.0,
                per_worker,
                done,
            })
        })
        .collect();
    let start = drive(driver, move || {
        let start = Instant::now();
        for _ in 0..per_worker {
            for a in &addrs {
                a.do_send(FjMsg);
            }
        }
        start
    });
    wait(&mut rx, workers, "fork-join").await?;
    let took = start.elapsed();
    for a in arbs {
        a.stop();
    }
    Ok(took)
}

// ------------------------------------------------------------------ savina thread ring

struct Next(Addr<RingNode>);
struct Token(u64);
message!(Next => (), Token => ());

struct RingNode {
    next: Option<Addr<RingNode>>,
    done: Done,
}
actor!(RingNode);

impl Handler<Next> for RingNode {
    type Result = ();
    fn handle(&mut self, Next(n): Next, _: &mut Context<Self>) {
        self.next = Some(n);
    }
}

impl Handler<Token> for RingNode {
    type Result = ();
    fn handle(&mut self, Token(left): Token, _: &mut Context<Self>) {
        if left == 0 {
            let _ = self.done.send(());
        } else if let Some(n) = &self.next {
            n.do_send(Token(left - 1));
        }
    }
}

async fn thread_ring(actors: u64, passes: u64) -> Timed {
    let (tx, mut rx) = unbounded_channel();
    let addrs: Vec<_> = (0..actors)
        .map(|_| {
            RingNode {
                next: None,
                done: tx.clone(),
            }
            .start()
        })
        .collect();
    for (i, a) in addrs.iter().enumerate() {
        a.do_send(Next(addrs[(i + 1) % addrs.len()].clone()));
    }
    let start = Instant::now();
    addrs[0].do_send(Token(passes));
    wait(&mut rx, 1, "thread-ring").await?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ savina big

struct BigStart(Arc<Vec<Addr<BigNode>>>);
struct BigPing(Addr<BigNode>);
struct BigPong;
message!(BigStart => (), BigPing => (), BigPong => ());

struct BigNode {
    peers: Arc<Vec<Addr<BigNode>>>,
    rng: XorShift,
    sent: u64,
    pings: u64,
    done: Done,
}
actor!(BigNode);

impl BigNode {
    fn ping(&mut self, me: Addr<BigNode>) {
        self.sent += 1;
        self.peers[self.rng.next(self.peers.len())].do_send(BigPing(me));
    }
}

impl Handler<BigStart> for BigNode {
    type Result = ();
    fn handle(&mut self, BigStart(peers): BigStart, ctx: &mut Context<Self>) {
        self.peers = peers;
        self.ping(ctx.address());
    }
}

impl Handler<BigPing> for BigNode {
    type Result = ();
    fn handle(&mut self, BigPing(from): BigPing, _: &mut Context<Self>) {
        from.do_send(BigPong);
    }
}

impl Handler<BigPong> for BigNode {
    type Result = ();
    fn handle(&mut self, _: BigPong, ctx: &mut Context<Self>) {
        if self.sent == self.pings {
            let _ = self.done.send(());
        } else {
            self.ping(ctx.address());
        }
    }
}

async fn big(actors: u64, pings: u64) -> Timed {
    let (tx, mut rx) = unbounded_channel();
    let addrs: Arc<Vec<_>> = Arc::new(
        (0..actors as usize)
            .map(|i| {
                BigNode {
                    peers: Arc::default(),
                    rng: XorShift::for_actor(i),
                    sent: 0,
                    pings,
                    done: tx.clone(),
                }
                .start()
            })
            .collect(),
    );
    let start = Instant::now();
    for a in addrs.iter() {
        a.do_send(BigStart(addrs.clone()));
    }
    wait(&mut rx, actors, "big").await?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ savina chameneos

struct Meet {
    color: u8,
    who: Addr<Creature>,
}
struct Mate(u8);
struct ChStart;
struct ChStop;
message!(Meet => (), Mate => (), ChStart => (), ChStop => ());

struct Mall {
    waiting: Option<Meet>,
    done: u64,
    meetings: u64,
    finished: Done,
}
struct Creature {
    color: u8,
    mall: Addr<Mall>,
}
actor!(Mall, Creature);

impl Handler<Meet> for Mall {
    type Result = ();
    fn handle(&mut self, m: Meet, _: &mut Context<Self>) {
        if self.done == self.meetings {
            m.who.do_send(ChStop);
            return;
        }
        match self.waiting.take() {
            None => self.waiting = Some(m),
            Some(w) => {
                self.done += 1;
                w.who.do_send(Mate(m.color));
                m.who.do_send(Mate(w.color));
                if self.done == self.meetings {
                    let _ = self.finished.send(());
                }
            }
        }
    }
}

impl Creature {
    fn meet(&self, me: Addr<Creature>) {
        self.mall.do_send(Meet {
            color: self.color,
            who: me,
        });
    }
}

impl Handler<ChStart> for Creature {
    type Result = ();
    fn handle(&mut self, _: ChStart, ctx: &mut Context<Self>) {
        self.meet(ctx.address());
    }
}

impl Handler<Mate> for Creature {
    type Result = ();
    fn handle(&mut self, Mate(other): Mate, ctx: &mut Context<Self>) {
        self.color = complement(self.color, other);
        self.meet(ctx.address());
    }
}

impl Handler<ChStop> for Creature {
    type Result = ();
    fn handle(&mut self, _: ChStop, _: &mut Context<Self>) {}
}

async fn chameneos(creatures: u64, meetings: u64) -> Timed {
    let (tx, mut rx) = unbounded_channel();
    let mall = Mall {
        waiting: None,
        done: 0,
        meetings,
        finished: tx,
    }
    .start();
    let addrs: Vec<_> = (0..creatures)
        .map(|i| {
            Creature {
                color: (i % 3) as u8,
                mall: mall.clone(),
            }
            .start()
        })
        .collect();
    let start = Instant::now();
    for a in &addrs {
        a.do_send(ChStart);
    }
    wait(&mut rx, 1, "chameneos").await?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ request latency

struct Echo(u64);
message!(Echo => u64);

struct EchoActor;
actor!(EchoActor);

impl Handler<Echo> for EchoActor {
    type Result = u64;
    fn handle(&mut self, Echo(i): Echo, _: &mut Context<Self>) -> u64 {
        i
    }
}

async fn request(n: u64) -> RunResult {
    // The requester runs on the system arbiter, the thread its actors run on: actix's one
    // way to await a request.
    let echo = EchoActor.start();
    let mut lat = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        let got = echo
            .send(Echo(i))
            .timeout(Duration::from_secs(5))
            .await
            .map_err(|e| format!("request: {e}"))?;
        lat.push(t.elapsed());
        if got != i {
            return Err(format!("request: got {got} for {i}"));
        }
    }
    let mut metrics = latency_metrics(&mut lat);
    let (tx, rx) = tokio::sync::oneshot::channel();
    Requester {
        echo,
        n,
        next: 0,
        sent: Instant::now(),
        lat: Vec::with_capacity(n as usize),
        done: Some(tx),
    }
    .start();
    let mut lat = rx
        .await
        .map_err(|_| "request-actor: the requester stopped".to_string())??;
    metrics.extend(latency_metrics_named("request-actor", &mut lat));
    Ok(metrics)
}

/// The `request-actor` requester: `send(..).into_actor(self)` waited on in its context
/// (the actix way to use a reply inside an actor), then the next request.
struct Requester {
    echo: Addr<EchoActor>,
    n: u64,
    next: u64,
    sent: Instant,
    lat: Vec<Duration>,
    done: Option<tokio::sync::oneshot::Sender<Result<Vec<Duration>, String>>>,
}

impl Actor for Requester {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.request_next(ctx);
    }
}

impl Requester {
    fn finish(&mut self, ctx: &mut Context<Self>, r: Result<Vec<Duration>, String>) {
        if let Some(done) = self.done.take() {
            let _ = done.send(r);
        }
        ctx.stop();
    }

    fn request_next(&mut self, ctx: &mut Context<Self>) {
        if self.next == self.n {
            let lat = std::mem::take(&mut self.lat);
            return self.finish(ctx, Ok(lat));
        }
        let i = self.next;
        self.sent = Instant::now();
        ctx.wait(
            self.echo
                .send(Echo(i))
                .timeout(Duration::from_secs(5))
                .into_actor(self)
                .map(move |r, act, ctx| {
                    act.lat.push(act.sent.elapsed());
                    match r {
                        Ok(got) if got == i => {
                            act.next += 1;
                            act.request_next(ctx);
                        }
                        other => act.finish(ctx, Err(format!("request-actor: {other:?} for {i}"))),
                    }
                }),
        );
    }
}

// ------------------------------------------------------------------ idle memory

async fn idle_actors(n: u64) -> Result<Box<dyn Any>, String> {
    let addrs: Vec<_> = (0..n).map(|_| EchoActor.start()).collect();
    for (i, a) in addrs.iter().enumerate() {
        let got = a
            .send(Echo(i as u64))
            .await
            .map_err(|e| format!("idle-memory: {e}"))?;
        if got != i as u64 {
            return Err(format!("idle-memory: got {got} for {i}"));
        }
    }
    Ok(Box::new(addrs))
}
