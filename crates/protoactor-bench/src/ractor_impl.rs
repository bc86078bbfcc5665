//! The local workloads on ractor, written the ractor way: a stateless handler type with a
//! `State`, one message enum per actor, `cast` for one-way messages, `call` with an
//! `RpcReplyPort` for the request round trip, children spawned with `spawn_linked`.
//! ractor's mailboxes are unbounded (it has no bounded mailbox to mirror Go's).
//!
//! Over 700 lines on purpose: every workload of one implementation in one file, so the
//! implementations read side by side (actix_impl.rs, kameo_impl.rs, protoactor_rs.rs alike).

use std::any::Any;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::common::*;
use crate::framework::{drive, Driver, Framework, Timed};

type Res = Result<(), ActorProcessingErr>;

/// ractor on a multi-thread tokio runtime.
pub struct Ractor {
    rt: tokio::runtime::Runtime,
}

impl Framework for Ractor {
    const NAME: &'static str = "ractor";
    fn start() -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio: {e}"))?;
        Ok(Ractor { rt })
    }
    fn in_process(&self, pairs: u64, per_pair: u64, batch: u64, driver: Driver) -> Timed {
        in_process(&self.rt, pairs, per_pair, batch, driver)
    }
    fn spawn_tree(&self, leaves: u64, div: u64) -> Timed {
        tree(&self.rt, leaves, div, Shape::Spawn)
    }
    fn spawn_root(&self, leaves: u64, div: u64) -> Timed {
        tree(&self.rt, leaves, div, Shape::FromRoot)
    }
    fn ping_pong(&self, n: u64) -> Timed {
        ping_pong(&self.rt, n)
    }
    fn counting(&self, n: u64, driver: Driver) -> Timed {
        counting(&self.rt, n, driver)
    }
    fn fork_join(&self, workers: u64, per_worker: u64, driver: Driver) -> Timed {
        fork_join(&self.rt, workers, per_worker, driver)
    }
    fn thread_ring(&self, actors: u64, passes: u64) -> Timed {
        thread_ring(&self.rt, actors, passes)
    }
    fn big(&self, actors: u64, pings: u64) -> Timed {
        big(&self.rt, actors, pings)
    }
    fn chameneos(&self, creatures: u64, meetings: u64) -> Timed {
        chameneos(&self.rt, creatures, meetings)
    }
    fn skynet(&self, leaves: u64, div: u64) -> Timed {
        tree(&self.rt, leaves, div, Shape::Skynet)
    }
    fn request(&self, n: u64) -> RunResult {
        request(&self.rt, n)
    }
    fn idle_actors(&self, n: u64) -> Result<Box<dyn Any>, String> {
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

fn spawn_err(e: ractor::SpawnErr) -> String {
    format!("spawn failed: {e}")
}

async fn spawn<A: Actor>(h: A, args: A::Arguments) -> Result<ActorRef<A::Msg>, String> {
    Actor::spawn(None, h, args)
        .await
        .map(|(r, _)| r)
        .map_err(spawn_err)
}

fn cast<M: ractor::Message>(to: &ActorRef<M>, m: M) -> Result<(), String> {
    to.cast(m).map_err(|e| format!("cast failed: {e}"))
}

/// An actor whose state is its arguments.
macro_rules! simple_actor {
    ($h:ident, $msg:ty, $state:ty, |$me:ident, $m:ident, $s:ident| $body:block) => {
        struct $h;
        impl Actor for $h {
            type Msg = $msg;
            type State = $state;
            type Arguments = $state;
            async fn pre_start(
                &self,
                _: ActorRef<Self::Msg>,
                args: $state,
            ) -> Result<$state, ActorProcessingErr> {
                Ok(args)
            }
            #[allow(unused_variables)]
            async fn handle(&self, $me: ActorRef<$msg>, $m: $msg, $s: &mut $state) -> Res {
                $body
                Ok(())
            }
        }
    };
}

// ------------------------------------------------------------------ in-process

/// protoactor-go's in-process messages: a fresh one each way, carrying its sender.
enum IpMsg {
    Start(ActorRef<EchoMsg>),
    Pong(ActorRef<EchoMsg>),
}
struct EchoMsg(ActorRef<IpMsg>);

struct IpState {
    remaining: u64,
    in_flight: u64,
    batch: u64,
    done: Sender<()>,
}

impl IpState {
    fn send_batch(&mut self, echo: &ActorRef<EchoMsg>, me: &ActorRef<IpMsg>) -> bool {
        if self.remaining == 0 {
            return false;
        }
        for _ in 0..self.batch {
            let _ = echo.cast(EchoMsg(me.clone()));
        }
        self.remaining -= self.batch;
        self.in_flight = self.batch;
        true
    }
}

simple_actor!(IpPing, IpMsg, IpState, |me, m, s| {
    match m {
        IpMsg::Start(echo) => {
            s.send_batch(&echo, &me);
        }
        IpMsg::Pong(echo) => {
            s.in_flight -= 1;
            if s.in_flight == 0 && !s.send_batch(&echo, &me) {
                let _ = s.done.send(());
            }
        }
    }
});

simple_actor!(IpEcho, EchoMsg, (), |me, m, s| {
    let _ = m.0.cast(IpMsg::Pong(me.clone()));
});

fn in_process(
    rt: &tokio::runtime::Runtime,
    pairs: u64,
    per_pair: u64,
    batch: u64,
    driver: Driver,
) -> Timed {
    let (tx, rx) = channel();
    let actors = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..pairs {
            let ping = spawn(
                IpPing,
                IpState {
                    remaining: per_pair,
                    in_flight: 0,
                    batch,
                    done: tx.clone(),
                },
            )
            .await?;
            let echo = spawn(IpEcho, ()).await?;
            v.push((ping, echo));
        }
        Ok::<_, String>(v)
    })?;
    let start = drive(rt.handle(), driver, move || {
        let start = Instant::now();
        for (ping, echo) in &actors {
            cast(ping, IpMsg::Start(echo.clone()))?;
        }
        Ok::<_, String>(start)
    })??;
    wait(&rx, pairs, "in-process")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ spawn and skynet trees

enum NodeMsg {
    Req { num: u64, size: u64, div: u64 },
    Sum(i64),
}

/// Which tree: who spawns the children and who stops when it has answered.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// Children linked to their parent (`spawn_linked`); leaves stop.
    Spawn,
    /// protoactor-go's spawn benchmark: every node unlinked (`Actor::spawn`), none stops.
    FromRoot,
    /// Linked children; every node stops once it has answered.
    Skynet,
}

struct NodeState {
    parent: Option<ActorRef<NodeMsg>>,
    reply: Option<Sender<i64>>,
    replies: u64,
    sum: i64,
    shape: Shape,
}

impl NodeState {
    fn report(&mut self, v: i64) {
        if let Some(p) = &self.parent {
            let _ = p.cast(NodeMsg::Sum(v));
        } else if let Some(tx) = self.reply.take() {
            let _ = tx.send(v);
        }
    }
}

struct Node;

impl Actor for Node {
    type Msg = NodeMsg;
    type State = NodeState;
    type Arguments = NodeState;
    async fn pre_start(
        &self,
        _: ActorRef<NodeMsg>,
        args: NodeState,
    ) -> Result<NodeState, ActorProcessingErr> {
        Ok(args)
    }
    /// A child that finished is expected: by default ractor stops the parent with it.
    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<NodeMsg>,
        _: ractor::SupervisionEvent,
        _: &mut NodeState,
    ) -> Res {
        Ok(())
    }
    async fn handle(&self, me: ActorRef<NodeMsg>, m: NodeMsg, s: &mut NodeState) -> Res {
        match m {
            NodeMsg::Req { num, size, div } => {
                if size == 1 {
                    s.report(num as i64);
                    if s.shape != Shape::FromRoot {
                        me.stop(None);
                    }
                    return Ok(());
                }
                s.replies = div;
                let step = size / div;
                for i in 0..div {
                    let state = NodeState {
                        parent: Some(me.clone()),
                        reply: None,
                        replies: 0,
                        sum: 0,
                        shape: s.shape,
                    };
                    let (child, _) = if s.shape == Shape::FromRoot {
                        Actor::spawn(None, Node, state).await?
                    } else {
                        Actor::spawn_linked(None, Node, state, me.get_cell()).await?
                    };
                    child.cast(NodeMsg::Req {
                        num: num + i * step,
                        size: step,
                        div,
                    })?;
                }
            }
            NodeMsg::Sum(v) => {
                s.sum += v;
                s.replies -= 1;
                if s.replies == 0 {
                    s.report(s.sum);
                    if s.shape == Shape::Skynet {
                        me.stop(None);
                    }
                }
            }
        }
        Ok(())
    }
}

fn tree(rt: &tokio::runtime::Runtime, leaves: u64, div: u64, shape: Shape) -> Timed {
    let (tx, rx) = channel();
    let start = Instant::now();
    let top = rt.block_on(spawn(
        Node,
        NodeState {
            parent: None,
            reply: Some(tx),
            replies: 0,
            sum: 0,
            shape,
        },
    ))?;
    cast(
        &top,
        NodeMsg::Req {
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

enum PingMsg {
    Start(ActorRef<PongMsg>),
    Pong,
}
struct PongMsg(ActorRef<PingMsg>);

struct PingState {
    pong: Option<ActorRef<PongMsg>>,
    left: u64,
    done: Sender<()>,
}

simple_actor!(Pinger, PingMsg, PingState, |me, m, s| {
    match m {
        PingMsg::Start(p) => {
            p.cast(PongMsg(me.clone()))?;
            s.pong = Some(p);
        }
        PingMsg::Pong => {
            s.left -= 1;
            if s.left == 0 {
                let _ = s.done.send(());
            } else if let Some(p) = &s.pong {
                p.cast(PongMsg(me.clone()))?;
            }
        }
    }
});

simple_actor!(Ponger, PongMsg, (), |me, m, s| {
    m.0.cast(PingMsg::Pong)?;
});

fn ping_pong(rt: &tokio::runtime::Runtime, n: u64) -> Timed {
    let (tx, rx) = channel();
    let (ping, pong) = rt.block_on(async {
        let pong = spawn(Ponger, ()).await?;
        let ping = spawn(
            Pinger,
            PingState {
                pong: None,
                left: n,
                done: tx,
            },
        )
        .await?;
        Ok::<_, String>((ping, pong))
    })?;
    let start = Instant::now();
    cast(&ping, PingMsg::Start(pong))?;
    wait(&rx, 1, "ping-pong")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ savina counting

enum CountMsg {
    Inc,
    Get(RpcReplyPort<u64>),
}

simple_actor!(Counter, CountMsg, u64, |me, m, count| {
    match m {
        CountMsg::Inc => *count += 1,
        CountMsg::Get(port) => {
            let _ = port.send(*count);
        }
    }
});

fn counting(rt: &tokio::runtime::Runtime, n: u64, driver: Driver) -> Timed {
    let counter = rt.block_on(spawn(Counter, 0))?;
    let send = move || {
        let start = Instant::now();
        for _ in 0..n {
            cast(&counter, CountMsg::Inc)?;
        }
        Ok::<_, String>((start, counter))
    };
    // The `call` for the count: awaited by the driver task, or by `block_on` from outside.
    let (took, got) = match driver {
        Driver::Outside => {
            let (start, counter) = send()?;
            let got = rt.block_on(counter.call(CountMsg::Get, Some(RUN_TIMEOUT)));
            (start.elapsed(), got)
        }
        Driver::Task => rt
            .block_on(rt.spawn(async move {
                let (start, counter) = send()?;
                let got = counter.call(CountMsg::Get, Some(RUN_TIMEOUT)).await;
                Ok::<_, String>((start.elapsed(), got))
            }))
            .map_err(|e| format!("counting: driver task: {e}"))??,
    };
    let got = got.map_err(|e| format!("counting: {e}"))?;
    match got {
        ractor::rpc::CallResult::Success(c) if c == n => Ok(took),
        ractor::rpc::CallResult::Success(c) => Err(format!("counting: counted {c} of {n}")),
        _ => Err("counting: no answer".into()),
    }
}

// ------------------------------------------------------------------ savina fork-join

struct FjMsg;

struct FjState {
    count: u64,
    acc: f64,
    per_worker: u64,
    done: Sender<()>,
}

simple_actor!(FjWorker, FjMsg, FjState, |me, m, s| {
    s.acc += work(s.count as f64);
    s.count += 1;
    if s.count == s.per_worker {
        std::hint::black_box(s.acc);
        let _ = s.done.send(());
    }
});

fn fork_join(rt: &tokio::runtime::Runtime, workers: u64, per_worker: u64, driver: Driver) -> Timed {
    let (tx, rx) = channel();
    let refs = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..workers {
            v.push(
                spawn(
                    FjWorker,
                    FjState {
                        count: 0,
                        acc: 0.0,
                        per_worker,
                        done: tx.clone(),
                    },
                )
                .await?,
            );
        }
        Ok::<_, String>(v)
    })?;
    let start = drive(rt.handle(), driver, move || {
        let start = Instant::now();
        for _ in 0..per_worker {
            for r in &refs {
                cast(r, FjMsg)?;
            }
        }
        Ok::<_, String>(start)
    })??;
    wait(&rx, workers, "fork-join")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ savina thread ring

enum RingMsg {
    Next(ActorRef<RingMsg>),
    Token(u64),
}

struct RingState {
    next: Option<ActorRef<RingMsg>>,
    done: Sender<()>,
}

simple_actor!(RingNode, RingMsg, RingState, |me, m, s| {
    match m {
        RingMsg::Next(n) => s.next = Some(n),
        RingMsg::Token(0) => {
            let _ = s.done.send(());
        }
        RingMsg::Token(left) => {
            if let Some(n) = &s.next {
                n.cast(RingMsg::Token(left - 1))?;
            }
        }
    }
});

fn thread_ring(rt: &tokio::runtime::Runtime, actors: u64, passes: u64) -> Timed {
    let (tx, rx) = channel();
    let refs = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..actors {
            v.push(
                spawn(
                    RingNode,
                    RingState {
                        next: None,
                        done: tx.clone(),
                    },
                )
                .await?,
            );
        }
        Ok::<_, String>(v)
    })?;
    for (i, r) in refs.iter().enumerate() {
        cast(r, RingMsg::Next(refs[(i + 1) % refs.len()].clone()))?;
    }
    let start = Instant::now();
    cast(&refs[0], RingMsg::Token(passes))?;
    wait(&rx, 1, "thread-ring")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ savina big

enum BigMsg {
    Start(Arc<Vec<ActorRef<BigMsg>>>),
    Ping(ActorRef<BigMsg>),
    Pong,
}

struct BigState {
    peers: Arc<Vec<ActorRef<BigMsg>>>,
    rng: XorShift,
    sent: u64,
    pings: u64,
    done: Sender<()>,
}

impl BigState {
    fn ping(&mut self, me: &ActorRef<BigMsg>) -> Res {
        self.sent += 1;
        let peer = &self.peers[self.rng.next(self.peers.len())];
        peer.cast(BigMsg::Ping(me.clone()))?;
        Ok(())
    }
}

simple_actor!(BigNode, BigMsg, BigState, |me, m, s| {
    match m {
        BigMsg::Start(peers) => {
            s.peers = peers;
            s.ping(&me)?;
        }
        BigMsg::Ping(from) => from.cast(BigMsg::Pong)?,
        BigMsg::Pong => {
            if s.sent == s.pings {
                let _ = s.done.send(());
            } else {
                s.ping(&me)?;
            }
        }
    }
});

fn big(rt: &tokio::runtime::Runtime, actors: u64, pings: u64) -> Timed {
    let (tx, rx) = channel();
    let refs = rt.block_on(async {
        let mut v = Vec::new();
        for i in 0..actors as usize {
            v.push(
                spawn(
                    BigNode,
                    BigState {
                        peers: Arc::default(),
                        rng: XorShift::for_actor(i),
                        sent: 0,
                        pings,
                        done: tx.clone(),
                    },
                )
                .await?,
            );
        }
        Ok::<_, String>(Arc::new(v))
    })?;
    let start = Instant::now();
    for r in refs.iter() {
        cast(r, BigMsg::Start(refs.clone()))?;
    }
    wait(&rx, actors, "big")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ savina chameneos

struct Meet {
    color: u8,
    who: ActorRef<CreatureMsg>,
}
enum CreatureMsg {
    Start,
    Mate(u8),
    Stop,
}

struct MallState {
    waiting: Option<Meet>,
    done: u64,
    meetings: u64,
    finished: Sender<()>,
}

simple_actor!(Mall, Meet, MallState, |me, m, s| {
    if s.done == s.meetings {
        let _ = m.who.cast(CreatureMsg::Stop);
        return Ok(());
    }
    match s.waiting.take() {
        None => s.waiting = Some(m),
        Some(w) => {
            s.done += 1;
            let _ = w.who.cast(CreatureMsg::Mate(m.color));
            let _ = m.who.cast(CreatureMsg::Mate(w.color));
            if s.done == s.meetings {
                let _ = s.finished.send(());
            }
        }
    }
});

simple_actor!(Creature, CreatureMsg, (u8, ActorRef<Meet>), |me, m, s| {
    match m {
        CreatureMsg::Stop => return Ok(()),
        CreatureMsg::Mate(other) => s.0 = complement(s.0, other),
        CreatureMsg::Start => {}
    }
    s.1.cast(Meet {
        color: s.0,
        who: me.clone(),
    })?;
});

fn chameneos(rt: &tokio::runtime::Runtime, creatures: u64, meetings: u64) -> Timed {
    let (tx, rx) = channel();
    let refs = rt.block_on(async {
        let mall = spawn(
            Mall,
            MallState {
                waiting: None,
                done: 0,
                meetings,
                finished: tx,
            },
        )
        .await?;
        let mut v = Vec::new();
        for i in 0..creatures {
            v.push(spawn(Creature, ((i % 3) as u8, mall.clone())).await?);
        }
        Ok::<_, String>(v)
    })?;
    let start = Instant::now();
    for r in &refs {
        cast(r, CreatureMsg::Start)?;
    }
    wait(&rx, 1, "chameneos")?;
    Ok(start.elapsed())
}

// ------------------------------------------------------------------ request latency

struct Echo(u64, RpcReplyPort<u64>);

simple_actor!(EchoActor, Echo, (), |me, m, s| {
    let _ = m.1.send(m.0);
});

fn request(rt: &tokio::runtime::Runtime, n: u64) -> RunResult {
    let echo = rt.block_on(spawn(EchoActor, ()))?;
    // The row compared with the others: the requester is a task on the runtime the actors
    // run on (as protoactor-go's is a goroutine).
    let task = rt.spawn({
        let echo = echo.clone();
        async move { call_round_trips(&echo, n).await }
    });
    let mut lat = rt.block_on(task).map_err(|e| format!("request: {e}"))??;
    let mut metrics = latency_metrics(&mut lat);
    // `block_on` on the main thread, outside the runtime.
    let mut lat = rt.block_on(call_round_trips(&echo, n))?;
    metrics.extend(latency_metrics_named("request-outside", &mut lat));
    // An actor calling inside its handler, the ractor way.
    let mut lat = rt.block_on(async {
        let requester = spawn(Requester, echo).await?;
        match requester
            .call(|port| RunRequests(n, port), Some(RUN_TIMEOUT))
            .await
        {
            Ok(ractor::rpc::CallResult::Success(r)) => r,
            _ => Err("request-actor: no answer".to_string()),
        }
    })?;
    metrics.extend(latency_metrics_named("request-actor", &mut lat));
    Ok(metrics)
}

async fn call_round_trips(echo: &ActorRef<Echo>, n: u64) -> Result<Vec<Duration>, String> {
    let mut lat = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        let got = echo
            .call(|port| Echo(i, port), Some(Duration::from_secs(5)))
            .await
            .map_err(|e| format!("request: {e}"))?;
        lat.push(t.elapsed());
        match got {
            ractor::rpc::CallResult::Success(v) if v == i => {}
            _ => return Err(format!("request: wrong or no answer for {i}")),
        }
    }
    Ok(lat)
}

/// Asks the `request-actor` requester for `n` round trips and their latencies.
struct RunRequests(u64, RpcReplyPort<Result<Vec<Duration>, String>>);

simple_actor!(Requester, RunRequests, ActorRef<Echo>, |me, m, s| {
    let _ = m.1.send(call_round_trips(s, m.0).await);
});

// ------------------------------------------------------------------ idle memory

fn idle_actors(rt: &tokio::runtime::Runtime, n: u64) -> Result<Box<dyn Any>, String> {
    let refs = rt.block_on(async {
        let mut refs = Vec::with_capacity(n as usize);
        for _ in 0..n {
            refs.push(spawn(EchoActor, ()).await?);
        }
        for (i, r) in refs.iter().enumerate() {
            let i = i as u64;
            match r.call(|port| Echo(i, port), Some(RUN_TIMEOUT)).await {
                Ok(ractor::rpc::CallResult::Success(v)) if v == i => {}
                _ => return Err(format!("idle-memory: wrong or no answer for {i}")),
            }
        }
        Ok(refs)
    })?;
    Ok(Box::new(refs))
}
