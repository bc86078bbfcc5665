//! The local workloads on actix, written the actix way: `Handler<M>` impls, `do_send` for
//! one-way messages and `send(..).await` for the request round trip. actix runs each
//! arbiter on one thread; the throughput workloads that can use every core (in-process,
//! fork-join) spread their actors over one arbiter per core, the others run on the system
//! arbiter as a typical actix program does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::common::*;

type Done = UnboundedSender<()>;

/// Runs `workload` with sizes `p`.
pub fn run(workload: &str, p: &[u64]) -> RunResult {
    let p = p.to_vec();
    let workload = workload.to_string();
    let sys = System::new();
    sys.block_on(async move {
        let w = workload.as_str();
        match w {
            "in-process" => {
                let [pairs, per_pair, batch] = params(w, &p)?;
                in_process(pairs, per_pair, batch).await
            }
            "spawn" => {
                let [leaves, div] = params(w, &p)?;
                tree(leaves, div, false).await
            }
            "savina-ping-pong" => ping_pong(params::<1>(w, &p)?[0]).await,
            "savina-counting" => counting(params::<1>(w, &p)?[0]).await,
            "savina-fork-join" => {
                let [n, m] = params(w, &p)?;
                fork_join(n, m).await
            }
            "savina-thread-ring" => {
                let [a, n] = params(w, &p)?;
                thread_ring(a, n).await
            }
            "savina-big" => {
                let [a, n] = params(w, &p)?;
                big(a, n).await
            }
            "savina-chameneos" => {
                let [c, n] = params(w, &p)?;
                chameneos(c, n).await
            }
            "skynet" => {
                let [leaves, div] = params(w, &p)?;
                tree(leaves, div, true).await
            }
            "request" => request(params::<1>(w, &p)?[0]).await,
            "idle-memory" => idle_memory(params::<1>(w, &p)?[0]).await,
            other => Err(format!("actix: unknown workload {other}")),
        }
    })
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

struct Msg;
struct IpStart(Addr<IpEcho>);
message!(Msg => (), IpStart => ());

struct IpPing {
    echo: Option<Addr<IpEcho>>,
    remaining: u64,
    in_flight: u64,
    batch: u64,
    done: Done,
}
struct IpEcho {
    ping: Addr<IpPing>,
}
actor!(IpPing, IpEcho);

impl IpPing {
    fn send_batch(&mut self) -> bool {
        let Some(echo) = &self.echo else { return false };
        if self.remaining == 0 {
            return false;
        }
        for _ in 0..self.batch {
            echo.do_send(Msg);
        }
        self.remaining -= self.batch;
        self.in_flight = self.batch;
        true
    }
}

impl Handler<IpStart> for IpPing {
    type Result = ();
    fn handle(&mut self, IpStart(e): IpStart, _: &mut Context<Self>) {
        self.echo = Some(e);
        self.send_batch();
    }
}

impl Handler<Msg> for IpPing {
    type Result = ();
    fn handle(&mut self, _: Msg, _: &mut Context<Self>) {
        self.in_flight -= 1;
        if self.in_flight == 0 && !self.send_batch() {
            let _ = self.done.send(());
        }
    }
}

impl Handler<Msg> for IpEcho {
    type Result = ();
    fn handle(&mut self, _: Msg, _: &mut Context<Self>) {
        self.ping.do_send(Msg);
    }
}

async fn in_process(pairs: u64, per_pair: u64, batch: u64) -> RunResult {
    if batch == 0 || !per_pair.is_multiple_of(batch) {
        return Err("in-process: messages per pair must be a multiple of the batch".into());
    }
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
                    echo: None,
                    remaining: per_pair,
                    in_flight: 0,
                    batch,
                    done,
                }
            });
            let p = ping.clone();
            let echo = IpEcho::start_in_arbiter(&arb, move |ctx| {
                ctx.set_mailbox_capacity(batch as usize + 10);
                IpEcho { ping: p }
            });
            (ping, echo)
        })
        .collect();
    let start = Instant::now();
    for (ping, echo) in &actors {
        ping.do_send(IpStart(echo.clone()));
    }
    wait(&mut rx, pairs, "in-process").await?;
    let took = start.elapsed();
    for a in arbs {
        a.stop();
    }
    Ok(vec![Metric::rate("in-process", 2 * per_pair * pairs, took)])
}

// ------------------------------------------------------------------ spawn and skynet trees

struct TreeReq {
    num: u64,
    size: u64,
    div: u64,
}
struct Sum(i64);
message!(TreeReq => (), Sum => ());

/// A tree node; children `do_send` their sums to the parent's address.
struct Node {
    parent: Option<Addr<Node>>,
    reply: Option<UnboundedSender<i64>>,
    replies: u64,
    sum: i64,
    stop_all: bool,
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
            ctx.stop();
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
                stop_all: self.stop_all,
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
            if self.stop_all {
                ctx.stop();
            }
        }
    }
}

async fn tree(leaves: u64, div: u64, skynet: bool) -> RunResult {
    check_tree(leaves, div)?;
    let (tx, mut rx) = unbounded_channel();
    let base = proc_status_kb("VmRSS");
    let start = Instant::now();
    let top = Node {
        parent: None,
        reply: Some(tx),
        replies: 0,
        sum: 0,
        stop_all: skynet,
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
    Ok(if skynet {
        vec![Metric::millis("skynet", took)]
    } else {
        vec![
            Metric::millis("spawn", took),
            peak_bytes_per_actor(base, tree_actors(leaves, div)),
        ]
    })
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

async fn ping_pong(n: u64) -> RunResult {
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
    Ok(vec![Metric::rate(
        "savina-ping-pong",
        2 * n,
        start.elapsed(),
    )])
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

async fn counting(n: u64) -> RunResult {
    let counter = Counter(0).start();
    let start = Instant::now();
    for _ in 0..n {
        counter.do_send(Inc);
    }
    let got = counter
        .send(Get)
        .await
        .map_err(|e| format!("counting: {e}"))?;
    let took = start.elapsed();
    if got != n {
        return Err(format!("counting: counted {got} of {n}"));
    }
    Ok(vec![Metric::rate("savina-counting", n, took)])
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

async fn fork_join(workers: u64, per_worker: u64) -> RunResult {
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
    let start = Instant::now();
    for _ in 0..per_worker {
        for a in &addrs {
            a.do_send(FjMsg);
        }
    }
    wait(&mut rx, workers, "fork-join").await?;
    let took = start.elapsed();
    for a in arbs {
        a.stop();
    }
    Ok(vec![Metric::rate(
        "savina-fork-join",
        workers * per_worker,
        took,
    )])
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

async fn thread_ring(actors: u64, passes: u64) -> RunResult {
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
    Ok(vec![Metric::rate(
        "savina-thread-ring",
        passes,
        start.elapsed(),
    )])
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

async fn big(actors: u64, pings: u64) -> RunResult {
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
    Ok(vec![Metric::rate(
        "savina-big",
        2 * actors * pings,
        start.elapsed(),
    )])
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

async fn chameneos(creatures: u64, meetings: u64) -> RunResult {
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
    Ok(vec![Metric::rate(
        "savina-chameneos",
        4 * meetings,
        start.elapsed(),
    )])
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
    if n == 0 {
        return Err("request: needs at least one request".into());
    }
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
    Ok(latency_metrics(&mut lat))
}

// ------------------------------------------------------------------ idle memory

async fn idle_memory(n: u64) -> RunResult {
    if n == 0 {
        return Err("idle-memory: needs at least one actor".into());
    }
    let base = proc_status_kb("VmRSS");
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
    let rss = proc_status_kb("VmRSS");
    std::hint::black_box(&addrs);
    Ok(vec![idle_metric(base, rss, n)])
}
