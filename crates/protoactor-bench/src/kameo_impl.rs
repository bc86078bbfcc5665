//! The local workloads on kameo, written the kameo way: typed `Message<T>` handlers, `tell`
//! for one-way messages, `ask` for the request round trip, unbounded mailboxes for the
//! throughput runs (bounded(110) for in-process, as the Go benchmark does).
//!
//! Over 700 lines on purpose: every workload of one implementation in one file, so the
//! implementations read side by side (actix_impl.rs, ractor_impl.rs, protoactor_rs.rs alike).

use std::any::Any;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kameo::mailbox;
use kameo::message::{Context, Message};
use kameo::prelude::{ActorRef, Spawn};
use kameo::Actor;

use crate::common::*;
use crate::framework::{drive, Driver, Framework, Timed};

/// kameo on a multi-thread tokio runtime (kameo spawns its actors as tokio tasks).
pub struct Kameo {
    rt: tokio::runtime::Runtime,
}

impl Framework for Kameo {
    const NAME: &'static str = "kameo";
    fn start() -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio: {e}"))?;
        Ok(Kameo { rt })
    }
    fn in_process(&self, pairs: u64, per_pair: u64, batch: u64, driver: Driver) -> Timed {
        let _rt = self.rt.enter();
        in_process(&self.rt, pairs, per_pair, batch, driver)
    }
    fn spawn_tree(&self, leaves: u64, div: u64) -> Timed {
        tree(&self.rt, leaves, div, Shape::Spawn)
    }
    fn spawn_root(&self, leaves: u64, div: u64) -> Timed {
        tree(&self.rt, leaves, div, Shape::SpawnKeepLeaves)
    }
    fn ping_pong(&self, n: u64) -> Timed {
        let _rt = self.rt.enter();
        ping_pong(n)
    }
    fn counting(&self, n: u64, driver: Driver) -> Timed {
        let _rt = self.rt.enter();
        counting(&self.rt, n, driver)
    }
    fn fork_join(&self, workers: u64, per_worker: u64, driver: Driver) -> Timed {
        let _rt = self.rt.enter();
        fork_join(&self.rt, workers, per_worker, driver)
    }
    fn thread_ring(&self, actors: u64, passes: u64) -> Timed {
        let _rt = self.rt.enter();
        thread_ring(actors, passes)
    }
    fn big(&self, actors: u64, pings: u64) -> Timed {
        let _rt = self.rt.enter();
        big(actors, pings)
    }
    fn chameneos(&self, creatures: u64, meetings: u64) -> Timed {
        let _rt = self.rt.enter();
        chameneos(creatures, meetings)
    }
    fn skynet(&self, leaves: u64, div: u64) -> Timed {
        tree(&self.rt, leaves, div, Shape::Skynet)
    }
    fn request(&self, n: u64) -> RunResult {
        let _rt = self.rt.enter();
        request(&self.rt, n)
    }
    fn idle_actors(&self, n: u64) -> Result<Box<dyn Any>, String> {
        let _rt = self.rt.enter();
        idle_actors(&self.rt, n)
    }
}

fn wait(rx: &std::sync::mpsc::Receiver<()>, n: u64, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + RUN_TIMEOUT;
    for _ in 0..n {
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| format!("{what}: timed out"))?;
    }
    Ok(())
}

fn tell_now<A: Message<M>, M: Send + 'static>(to: &ActorRef<A>, m: M) -> Result<(), String> {
    to.tell(m)
        .try_send()
        .map_err(|e| format!("tell failed: {e}"))
}

// ------------------------------------------------------------------ in-process

/// protoactor-go's in-process messages: a fresh one each way, carrying its sender.
struct Ping(ActorRef<IpPing>);
struct Pong(ActorRef<IpEcho>);
struct IpStart(ActorRef<IpEcho>);

#[derive(Actor)]
struct IpPing {
    remaining: u64,
    in_flight: u64,
    batch: u64,
    done: Sender<()>,
}

impl IpPing {
    async fn send_batch(&mut self, echo: &ActorRef<IpEcho>, me: &ActorRef<IpPing>) -> bool {
        if self.remaining == 0 {
            return false;
        }
        for _ in 0..self.batch {
            let _ = echo.tell(Ping(me.clone())).await;
        }
        self.remaining -= self.batch;
        self.in_flight = self.batch;
        true
    }
}

impl Message<IpStart> for IpPing {
    type Reply = ();
    async fn handle(&mut self, IpStart(echo): IpStart, ctx: &mut Context<Self, ()>) {
        self.send_batch(&echo, ctx.actor_ref()).await;
    }
}

impl Message<Pong> for IpPing {
    type Reply = ();
    async fn handle(&mut self, Pong(echo): Pong, ctx: &mut Context<Self, ()>) {
        self.in_flight -= 1;
        if self.in_flight == 0 && !self.send_batch(&echo, ctx.actor_ref()).await {
            let _ = self.done.send(());
        }
    }
}

#[derive(Actor)]
struct IpEcho;

impl Message<Ping> for IpEcho {
    type Reply = ();
    async fn handle(&mut self, Ping(from): Ping, ctx: &mut Context<Self, ()>) {
        let _ = from.tell(Pong(ctx.actor_ref().clone())).await;
    }
}

fn in_process(
    rt: &tokio::runtime::Runtime,
    pairs: u64,
    per_pair: u64,
    batch: u64,
    driver: Driver,
) -> Timed {
    let (tx, rx) = channel();
    let cap = batch as usize + 10;
    let actors: Vec<_> = (0..pairs)
        .map(|_| {
            let ping = IpPing::spawn_with_mailbox(
                IpPing {
                    remaining: per_pair,
                    in_flight: 0,
                    batch,
                    done: tx.clone(),
                },
                mailbox::bounded(cap),
            );
            let echo = IpEcho::spawn_with_mailbox(IpEcho, mailbox::bounded(cap));
            (ping, echo)
        })
        .collect();
    let start = drive(rt.handle(), driver, move || {
        let start = Instant::now();
        for (ping, echo) in &actors {
            tell_now(ping, IpStart(echo.clone()))?;
        }
        Ok::<_, String>(start)
    })??;
    wait(&rx, pairs, "in-process")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ spawn and skynet trees

struct TreeReq {
    num: u64,
    size: u64,
    div: u64,
}
struct Sum(i64);

/// Which tree: who stops when it has answered. kameo actors are top level unless linked,
/// so the spawn tree and protoactor-go's root-spawned tree differ only in the leaves
/// stopping.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// Leaves stop.
    Spawn,
    /// Nothing stops (protoactor-go's spawn benchmark).
    SpawnKeepLeaves,
    /// Every node stops once it has answered.
    Skynet,
}

/// A tree node: spawns its children, which tell it their sums (kameo has no implicit
/// sender, so the parent's ref travels in the child's state).
#[derive(Actor)]
struct Node {
    parent: Option<ActorRef<Node>>,
    reply: Option<Sender<i64>>,
    replies: u64,
    sum: i64,
    shape: Shape,
}

impl Node {
    async fn report(&mut self, v: i64) {
        if let Some(p) = &self.parent {
            let _ = p.tell(Sum(v)).await;
        } else if let Some(tx) = self.reply.take() {
            let _ = tx.send(v);
        }
    }
}

impl Message<TreeReq> for Node {
    type Reply = ();
    async fn handle(&mut self, r: TreeReq, ctx: &mut Context<Self, ()>) {
        if r.size == 1 {
            self.report(r.num as i64).await;
            if self.shape != Shape::SpawnKeepLeaves {
                ctx.stop();
            }
            return;
        }
        self.replies = r.div;
        let step = r.size / r.div;
        let me = ctx.actor_ref().clone();
        for i in 0..r.div {
            let child = Node::spawn_with_mailbox(
                Node {
                    parent: Some(me.clone()),
                    reply: None,
                    replies: 0,
                    sum: 0,
                    shape: self.shape,
                },
                mailbox::unbounded(),
            );
            let _ = child
                .tell(TreeReq {
                    num: r.num + i * step,
                    size: step,
                    div: r.div,
                })
                .await;
        }
    }
}

impl Message<Sum> for Node {
    type Reply = ();
    async fn handle(&mut self, Sum(v): Sum, ctx: &mut Context<Self, ()>) {
        self.sum += v;
        self.replies -= 1;
        if self.replies == 0 {
            self.report(self.sum).await;
            if self.shape == Shape::Skynet {
                ctx.stop();
            }
        }
    }
}

fn tree(rt: &tokio::runtime::Runtime, leaves: u64, div: u64, shape: Shape) -> Timed {
    let _rt = rt.enter();
    let (tx, rx) = channel();
    let start = Instant::now();
    let top = rt.block_on(async {
        Node::spawn_with_mailbox(
            Node {
                parent: None,
                reply: Some(tx),
                replies: 0,
                sum: 0,
                shape,
            },
            mailbox::unbounded(),
        )
    });
    tell_now(
        &top,
        TreeReq {
            num: 0,
            size: leaves,
            div,
        },
    )?;
    let sum = rx
        .recv_timeout(RUN_TIMEOUT)
        .map_err(|_| "tree: timed out".to_string())?;
    let took = start.elapsed();
    if sum != expected_sum(leaves) {
        return Err(format!("tree: wrong sum {sum}"));
    }
    Ok(took)
}

// ------------------------------------------------------------------ savina ping-pong

struct PpStart(ActorRef<Ponger>);
struct PpPing(ActorRef<Pinger>);
struct PpPong;

#[derive(Actor)]
struct Pinger {
    pong: Option<ActorRef<Ponger>>,
    left: u64,
    done: Sender<()>,
}

impl Message<PpStart> for Pinger {
    type Reply = ();
    async fn handle(&mut self, PpStart(p): PpStart, ctx: &mut Context<Self, ()>) {
        let _ = p.tell(PpPing(ctx.actor_ref().clone())).await;
        self.pong = Some(p);
    }
}

impl Message<PpPong> for Pinger {
    type Reply = ();
    async fn handle(&mut self, _: PpPong, ctx: &mut Context<Self, ()>) {
        self.left -= 1;
        if self.left == 0 {
            let _ = self.done.send(());
        } else if let Some(p) = &self.pong {
            let _ = p.tell(PpPing(ctx.actor_ref().clone())).await;
        }
    }
}

#[derive(Actor)]
struct Ponger;

impl Message<PpPing> for Ponger {
    type Reply = ();
    async fn handle(&mut self, PpPing(from): PpPing, _: &mut Context<Self, ()>) {
        let _ = from.tell(PpPong).await;
    }
}

fn ping_pong(n: u64) -> Timed {
    let (tx, rx) = channel();
    let pong = Ponger::spawn_with_mailbox(Ponger, mailbox::unbounded());
    let ping = Pinger::spawn_with_mailbox(
        Pinger {
            pong: None,
            left: n,
            done: tx,
        },
        mailbox::unbounded(),
    );
    let start = Instant::now();
    tell_now(&ping, PpStart(pong))?;
    wait(&rx, 1, "ping-pong")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ savina counting

struct Inc;
struct Get;

#[derive(Actor)]
struct Counter(u64);

impl Message<Inc> for Counter {
    type Reply = ();
    async fn handle(&mut self, _: Inc, _: &mut Context<Self, ()>) {
        self.0 += 1;
    }
}

impl Message<Get> for Counter {
    type Reply = u64;
    async fn handle(&mut self, _: Get, _: &mut Context<Self, u64>) -> u64 {
        self.0
    }
}

fn counting(rt: &tokio::runtime::Runtime, n: u64, driver: Driver) -> Timed {
    let counter = Counter::spawn_with_mailbox(Counter(0), mailbox::unbounded());
    let send = move || {
        let start = Instant::now();
        for _ in 0..n {
            tell_now(&counter, Inc)?;
        }
        Ok::<_, String>((start, counter))
    };
    // The `ask` for the count: awaited by the driver task, or by `block_on` from outside.
    let (took, got) = match driver {
        Driver::Outside => {
            let (start, counter) = send()?;
            let got = rt.block_on(async { counter.ask(Get).await });
            (start.elapsed(), got)
        }
        Driver::Task => rt
            .block_on(rt.spawn(async move {
                let (start, counter) = send()?;
                let got = counter.ask(Get).await;
                Ok::<_, String>((start.elapsed(), got))
            }))
            .map_err(|e| format!("counting: driver task: {e}"))??,
    };
    let got = got.map_err(|e| format!("counting: {e}"))?;
    if got != n {
        return Err(format!("counting: counted {got} of {n}"));
    }
    Ok(took)
}

// ------------------------------------------------------------------ savina fork-join

struct FjMsg;

#[derive(Actor)]
struct FjWorker {
    count: u64,
    acc: f64,
    per_worker: u64,
    done: Sender<()>,
}

impl Message<FjMsg> for FjWorker {
    type Reply = ();
    async fn handle(&mut self, _: FjMsg, _: &mut Context<Self, ()>) {
        self.acc += work(self.count as f64);
        self.count += 1;
        if self.count == self.per_worker {
            std::hint::black_box(self.acc);
            let _ = self.done.send(());
        }
    }
}

fn fork_join(rt: &tokio::runtime::Runtime, workers: u64, per_worker: u64, driver: Driver) -> Timed {
    let (tx, rx) = channel();
    let refs: Vec<_> = (0..workers)
        .map(|_| {
            FjWorker::spawn_with_mailbox(
                FjWorker {
                    count: 0,
                    acc: 0.0,
                    per_worker,
                    done: tx.clone(),
                },
                mailbox::unbounded(),
            )
        })
        .collect();
    let start = drive(rt.handle(), driver, move || {
        let start = Instant::now();
        for _ in 0..per_worker {
            for r in &refs {
                tell_now(r, FjMsg)?;
            }
        }
        Ok::<_, String>(start)
    })??;
    wait(&rx, workers, "fork-join")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ savina thread ring

struct Next(ActorRef<RingNode>);
struct Token(u64);

#[derive(Actor)]
struct RingNode {
    next: Option<ActorRef<RingNode>>,
    done: Sender<()>,
}

impl Message<Next> for RingNode {
    type Reply = ();
    async fn handle(&mut self, Next(n): Next, _: &mut Context<Self, ()>) {
        self.next = Some(n);
    }
}

impl Message<Token> for RingNode {
    type Reply = ();
    async fn handle(&mut self, Token(left): Token, _: &mut Context<Self, ()>) {
        if left == 0 {
            let _ = self.done.send(());
        } else if let Some(n) = &self.next {
            let _ = n.tell(Token(left - 1)).await;
        }
    }
}

fn thread_ring(actors: u64, passes: u64) -> Timed {
    let (tx, rx) = channel();
    let refs: Vec<_> = (0..actors)
        .map(|_| {
            RingNode::spawn_with_mailbox(
                RingNode {
                    next: None,
                    done: tx.clone(),
                },
                mailbox::unbounded(),
            )
        })
        .collect();
    for (i, r) in refs.iter().enumerate() {
        tell_now(r, Next(refs[(i + 1) % refs.len()].clone()))?;
    }
    let start = Instant::now();
    tell_now(&refs[0], Token(passes))?;
    wait(&rx, 1, "thread-ring")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ savina big

struct BigStart(Arc<Vec<ActorRef<BigNode>>>);
struct BigPing(ActorRef<BigNode>);
struct BigPong;

#[derive(Actor)]
struct BigNode {
    peers: Arc<Vec<ActorRef<BigNode>>>,
    rng: XorShift,
    sent: u64,
    pings: u64,
    done: Sender<()>,
}

impl BigNode {
    async fn ping(&mut self, me: &ActorRef<BigNode>) {
        self.sent += 1;
        let peer = &self.peers[self.rng.next(self.peers.len())];
        let _ = peer.tell(BigPing(me.clone())).await;
    }
}

impl Message<BigStart> for BigNode {
    type Reply = ();
    async fn handle(&mut self, BigStart(peers): BigStart, ctx: &mut Context<Self, ()>) {
        self.peers = peers;
        self.ping(ctx.actor_ref()).await;
    }
}

impl Message<BigPing> for BigNode {
    type Reply = ();
    async fn handle(&mut self, BigPing(from): BigPing, _: &mut Context<Self, ()>) {
        let _ = from.tell(BigPong).await;
    }
}

impl Message<BigPong> for BigNode {
    type Reply = ();
    async fn handle(&mut self, _: BigPong, ctx: &mut Context<Self, ()>) {
        if self.sent == self.pings {
            let _ = self.done.send(());
        } else {
            self.ping(ctx.actor_ref()).await;
        }
    }
}

fn big(actors: u64, pings: u64) -> Timed {
    let (tx, rx) = channel();
    let refs: Arc<Vec<_>> = Arc::new(
        (0..actors as usize)
            .map(|i| {
                BigNode::spawn_with_mailbox(
                    BigNode {
                        peers: Arc::default(),
                        rng: XorShift::for_actor(i),
                        sent: 0,
                        pings,
                        done: tx.clone(),
                    },
                    mailbox::unbounded(),
                )
            })
            .collect(),
    );
    let start = Instant::now();
    for r in refs.iter() {
        tell_now(r, BigStart(refs.clone()))?;
    }
    wait(&rx, actors, "big")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ savina chameneos

struct Meet {
    color: u8,
    who: ActorRef<Creature>,
}
struct Mate(u8);
struct ChStart;
struct ChStop;

#[derive(Actor)]
struct Mall {
    waiting: Option<Meet>,
    done: u64,
    meetings: u64,
    finished: Sender<()>,
}

impl Message<Meet> for Mall {
    type Reply = ();
    async fn handle(&mut self, m: Meet, _: &mut Context<Self, ()>) {
        if self.done == self.meetings {
            let _ = m.who.tell(ChStop).await;
            return;
        }
        match self.waiting.take() {
            None => self.waiting = Some(m),
            Some(w) => {
                self.done += 1;
                let _ = w.who.tell(Mate(m.color)).await;
                let _ = m.who.tell(Mate(w.color)).await;
                if self.done == self.meetings {
                    let _ = self.finished.send(());
                }
            }
        }
    }
}

#[derive(Actor)]
struct Creature {
    color: u8,
    mall: ActorRef<Mall>,
}

impl Creature {
    async fn meet(&self, me: &ActorRef<Creature>) {
        let _ = self
            .mall
            .tell(Meet {
                color: self.color,
                who: me.clone(),
            })
            .await;
    }
}

impl Message<ChStart> for Creature {
    type Reply = ();
    async fn handle(&mut self, _: ChStart, ctx: &mut Context<Self, ()>) {
        self.meet(ctx.actor_ref()).await;
    }
}

impl Message<Mate> for Creature {
    type Reply = ();
    async fn handle(&mut self, Mate(other): Mate, ctx: &mut Context<Self, ()>) {
        self.color = complement(self.color, other);
        self.meet(ctx.actor_ref()).await;
    }
}

impl Message<ChStop> for Creature {
    type Reply = ();
    async fn handle(&mut self, _: ChStop, _: &mut Context<Self, ()>) {}
}

fn chameneos(creatures: u64, meetings: u64) -> Timed {
    let (tx, rx) = channel();
    let mall = Mall::spawn_with_mailbox(
        Mall {
            waiting: None,
            done: 0,
            meetings,
            finished: tx,
        },
        mailbox::unbounded(),
    );
    let refs: Vec<_> = (0..creatures)
        .map(|i| {
            Creature::spawn_with_mailbox(
                Creature {
                    color: (i % 3) as u8,
                    mall: mall.clone(),
                },
                mailbox::unbounded(),
            )
        })
        .collect();
    let start = Instant::now();
    for r in &refs {
        tell_now(r, ChStart)?;
    }
    wait(&rx, 1, "chameneos")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ request latency

struct Echo(u64);

#[derive(Actor)]
struct EchoActor;

impl Message<Echo> for EchoActor {
    type Reply = u64;
    async fn handle(&mut self, Echo(i): Echo, _: &mut Context<Self, u64>) -> u64 {
        i
    }
}

fn request(rt: &tokio::runtime::Runtime, n: u64) -> RunResult {
    let echo = EchoActor::spawn(EchoActor);
    // The row compared with the others: the requester is a task on the runtime the actors
    // run on (as protoactor-go's is a goroutine).
    let task = rt.spawn({
        let echo = echo.clone();
        async move { ask_round_trips(&echo, n).await }
    });
    let mut lat = rt.block_on(task).map_err(|e| format!("request: {e}"))??;
    let mut metrics = latency_metrics(&mut lat);
    // `block_on` on the main thread, outside the runtime.
    let mut lat = rt.block_on(ask_round_trips(&echo, n))?;
    metrics.extend(latency_metrics_named("request-outside", &mut lat));
    // An actor asking inside its handler, the kameo way.
    let requester = Requester::spawn(Requester { echo });
    let mut lat = rt
        .block_on(async { requester.ask(RunRequests(n)).await })
        .map_err(|e| format!("request-actor: {e}"))?;
    metrics.extend(latency_metrics_named("request-actor", &mut lat));
    Ok(metrics)
}

async fn ask_round_trips(echo: &ActorRef<EchoActor>, n: u64) -> Result<Vec<Duration>, String> {
    let mut lat = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        let got = echo
            .ask(Echo(i))
            .await
            .map_err(|e| format!("request: {e}"))?;
        lat.push(t.elapsed());
        if got != i {
            return Err(format!("request: got {got} for {i}"));
        }
    }
    Ok(lat)
}

/// The `request-actor` requester: asks the echo `n` times inside one handler.
#[derive(Actor)]
struct Requester {
    echo: ActorRef<EchoActor>,
}

struct RunRequests(u64);

impl Message<RunRequests> for Requester {
    type Reply = Result<Vec<Duration>, String>;
    async fn handle(
        &mut self,
        RunRequests(n): RunRequests,
        _: &mut Context<Self, Self::Reply>,
    ) -> Self::Reply {
        ask_round_trips(&self.echo, n).await
    }
}

// ------------------------------------------------------------------ idle memory

fn idle_actors(rt: &tokio::runtime::Runtime, n: u64) -> Result<Box<dyn Any>, String> {
    let refs: Vec<_> = (0..n).map(|_| EchoActor::spawn(EchoActor)).collect();
    rt.block_on(async {
        for (i, r) in refs.iter().enumerate() {
            let got = r
                .ask(Echo(i as u64))
                .await
                .map_err(|e| format!("idle-memory: {e}"))?;
            if got != i as u64 {
                return Err(format!("idle-memory: got {got} for {i}"));
            }
        }
        Ok(())
    })?;
    Ok(Box::new(refs))
}
