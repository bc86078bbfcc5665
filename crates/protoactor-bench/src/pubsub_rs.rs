//! The `pubsub` workload's protoactor-rs members, each run as its own process (hidden
//! subcommands of this binary), mirroring `pubsub-member` / `pubsub-publisher` of
//! `bench/go`:
//!
//! ```text
//! __pubsub-member HEALTH_PORT PEERS SUBS                      member 2: SUBS subscribers
//! __pubsub-publisher HEALTH_PORT PEERS SUBS MESSAGES SEQ      member 1: the publisher
//! ```
//!
//! Both join cluster `bench` as the `cluster` workload's members do (automanaged provider,
//! disthash lookup), with pub/sub started (Go's defaults: no subscription store, 5 s
//! subscriber timeout). One topic; SUBS PID subscribers on member 2. Every message is a
//! `protoactor_bench.Ping`. In the latency phase (and the warm-up) its `seq` is the publish
//! time (Unix ns): a subscriber records the delivery latency under a lock shared by all
//! subscribers. In the throughput phase its `seq` is minus the phase's number of messages:
//! a subscriber only counts it, in a counter of its own on its own cache line ([`Tally`]),
//! and reads the clock once, when its count reaches that number (no shared lock, no clock
//! read per delivery: the bench's bookkeeping was about a quarter of member 2's
//! instructions per delivery, and it held both sides' rates toward the bench's lock). Member 2's actor `pubsub-stats`
//! answers the publisher's commands (a `Ping` with a negative `seq`, answered with a
//! `Pong`): -10 subscribe (once member 2 sees both members), -1 deliveries so far (the
//! counters summed), -2 the time of the last delivery (the latest of the subscribers'),
//! -3 reset, -4 / -5 latency p50 / p99 (ns); and a `Pong` with `seq` N is answered (with
//! the latency phase's count) once its subscribers have counted N deliveries since the
//! last reset.
//!
//! * `pubsub` (messages/s delivered): MESSAGES messages through a batching producer (Go's
//!   defaults: batches of up to 2,000), from the first `produce` to the last delivery of the
//!   last message, deliveries counted over all SUBS subscribers;
//! * `pubsub:p50` / `pubsub:p99`: SEQ messages published one at a time with
//!   `publisher().publish`, each once the one before reached every subscriber (the `Pong`
//!   request above), the time from publish to each subscriber's receipt: one message on an
//!   idle path. `publish` (as Go's) returns once the topic fanned the message out, before
//!   any delivery, so publishing the next one on its return measured a backlog instead:
//!   with the topic on the publisher's member (where the hash puts it about every other
//!   run) the publisher outran member 2's deliveries and the latencies grew along the run
//!   to tens of milliseconds; with the topic on member 2 a network round trip per publish
//!   mostly held the publisher back and they stayed low.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use protoactor::prelude::*;
use protoactor_cluster::pubsub::{ProducerConfig, PubSub, PubSubConfig, TOPIC_KIND};
use protoactor_cluster::Cluster;
use std::sync::{Mutex, MutexGuard};

use crate::cluster_rs::{peers, port, start_member_with};
use crate::common::{report_to_parent, Metric};
use crate::remote_rs::proto::{Ping, Pong};

const TOPIC: &str = "bench-topic";
const STATS: &str = "pubsub-stats";
/// How long the members may take to see each other, and a phase to finish.
const WAIT: Duration = Duration::from_secs(120);

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// One subscriber's count of the throughput phase, on a cache line of its own: only its
/// subscriber writes it (so the 100 subscribers share no line and take no lock), the stats
/// actor reads it when asked. Go's side mirrors it (`tally` in `bench/go/pubsub.go`).
#[derive(Default)]
#[repr(align(128))]
struct Tally {
    count: AtomicI64,
    /// When this subscriber got the phase's last message (Unix ns), 0 before.
    last: AtomicI64,
}

impl Tally {
    /// Counts one throughput-phase message of a phase of `of` messages; the clock is read
    /// once, by the delivery that completes the count. Only this tally's subscriber calls it.
    fn count(&self, of: i64, now: impl FnOnce() -> i64) {
        let c = self.count.load(Ordering::Relaxed) + 1;
        if c == of {
            self.last.store(now(), Ordering::Relaxed);
        }
        // After `last`, so whoever reads the full count reads the time. SeqCst as Go's
        // `atomic.StoreInt64` (an `xchg` on both; Release would do), for the same work.
        self.count.store(c, Ordering::SeqCst);
    }

    fn reset(&self) {
        self.count.store(0, Ordering::SeqCst);
        self.last.store(0, Ordering::SeqCst);
    }
}

/// The deliveries counted by the tallies, and the latest of their last deliveries.
fn totals(tallies: &[Tally]) -> (i64, i64) {
    tallies.iter().fold((0, 0), |(n, last), t| {
        // The count first: a full count implies its time (stored before it).
        let c = t.count.load(Ordering::SeqCst);
        (n + c, last.max(t.last.load(Ordering::SeqCst)))
    })
}

/// What member 2's subscribers saw in the latency phase (and the warm-up).
#[derive(Default)]
struct Stats {
    count: i64,
    last: i64,
    latencies: Vec<i64>,
    /// Who waits for the count to reach how many (a `Pong` request).
    waiter: Option<(i64, Pid)>,
}

impl Stats {
    /// Takes the waiter if the count has reached its number.
    fn reached(&mut self) -> Option<Pid> {
        match self.waiter {
            Some((n, _)) if self.count >= n => self.waiter.take().map(|(_, to)| to),
            _ => None,
        }
    }

    fn percentile(&self, p: usize) -> i64 {
        let mut l = self.latencies.clone();
        l.sort_unstable();
        l.get(l.len() * p / 100).copied().unwrap_or(0)
    }
}

/// Answers the waiter (with the count) if the count has reached its number; the lock is
/// given up before the send.
fn answer_waiter(ctx: &Context, mut st: MutexGuard<'_, Stats>) {
    let (waiter, count) = (st.reached(), st.count);
    drop(st);
    if let Some(to) = waiter {
        ctx.send(&to, Pong { seq: count });
    }
}

fn sizes(args: &[String], n: usize) -> Result<Vec<u64>, String> {
    let v: Vec<u64> = args
        .iter()
        .map(|a| {
            a.parse()
                .map_err(|_| format!("{a:?} is not a whole number"))
        })
        .collect::<Result<_, _>>()?;
    if v.len() != n || v.contains(&0) {
        return Err(format!("needs {n} sizes of at least 1, got {args:?}"));
    }
    Ok(v)
}

fn start(health_port: u16, peers: Vec<String>) -> Result<(ActorSystem, Cluster), String> {
    let (system, cluster) = start_member_with(health_port, peers, |c| {
        c.with_service(PubSub::new(PubSubConfig::default()))
    })?;
    Ok((system, cluster))
}

/// Member 2: the subscribers and the stats actor; prints `READY`, serves until stdin closes.
pub fn member_main(args: &[String]) -> Result<(), String> {
    let [p, list, rest @ ..] = args else {
        return Err("usage: __pubsub-member HEALTH_PORT HOST:PORT,... SUBS".into());
    };
    let subs = sizes(rest, 1)?[0];
    let (system, cluster) = start(port(p)?, peers(list)?)?;
    let stats = Arc::new(Mutex::new(Stats::default()));
    let tallies: Arc<[Tally]> = (0..subs).map(|_| Tally::default()).collect();
    // Subscriber `i`: a throughput-phase message (a negative `seq`, minus the phase's
    // number of messages) is only counted, in tally `i`; a latency-phase message (its
    // publish time) is recorded under the stats lock.
    let subscriber = {
        let (s, tallies) = (stats.clone(), tallies.clone());
        move |i: usize| {
            let (s, tallies) = (s.clone(), tallies.clone());
            Props::from_func(move |ctx| {
                let Some(p) = ctx.message_as::<Ping>() else {
                    return;
                };
                if p.seq < 0 {
                    tallies[i].count(p.seq.saturating_neg(), now_ns);
                    return;
                }
                let now = now_ns();
                let mut st = s.lock().unwrap_or_else(|e| e.into_inner());
                st.count += 1;
                st.last = now;
                st.latencies.push(now - p.seq);
                answer_waiter(ctx, st);
            })
        }
    };
    let control = Props::from_func(move |ctx| {
        if let Some(n) = ctx.message_as::<Pong>().map(|p| p.seq) {
            // Answered now or by the subscriber whose delivery reaches `n` (under the lock,
            // so no delivery slips between the check and the wait).
            let Some(to) = ctx.sender().cloned() else {
                return;
            };
            let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
            st.waiter = Some((n, to));
            answer_waiter(ctx, st);
            return;
        }
        let Some(cmd) = ctx.message_as::<Ping>().map(|p| p.seq) else {
            return;
        };
        let seq = match cmd {
            -10 => {
                // Subscribing awaits the topic: a task answers when all are subscribed.
                let (c, props, sender) =
                    (cluster.clone(), subscriber.clone(), ctx.sender().cloned());
                let system = ctx.system().clone();
                system.runtime().clone().spawn(async move {
                    if !c.member_list().wait_until(WAIT, |t| t.len() >= 2).await {
                        eprintln!("pubsub member: member 1 never joined");
                        std::process::exit(1);
                    }
                    for i in 0..subs as usize {
                        let pid = system.root().spawn(&props(i));
                        if let Err(e) = c.subscribe_pid(TOPIC, &pid).await {
                            eprintln!("pubsub member: subscribe: {e}");
                            std::process::exit(1);
                        }
                    }
                    if let Some(to) = sender {
                        system.root().send(&to, Pong { seq: 0 });
                    }
                });
                return;
            }
            -1 => stats.lock().unwrap_or_else(|e| e.into_inner()).count + totals(&tallies).0,
            -2 => {
                let last = stats.lock().unwrap_or_else(|e| e.into_inner()).last;
                last.max(totals(&tallies).1)
            }
            -3 => {
                *stats.lock().unwrap_or_else(|e| e.into_inner()) = Stats::default();
                tallies.iter().for_each(Tally::reset);
                0
            }
            -4 => stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .percentile(50),
            -5 => stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .percentile(99),
            _ => 0,
        };
        ctx.respond(Pong { seq });
    });
    system
        .root()
        .spawn_named(&control, STATS)
        .map_err(|e| format!("cannot spawn {STATS}: {e}"))?;
    println!("READY");
    let _ = std::io::stdout().flush();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}

/// Member 1: joins, drives member 2, publishes, prints `RESULT` lines.
pub fn publisher_main(args: &[String]) -> Result<(), String> {
    let [p, list, rest @ ..] = args else {
        return Err("usage: __pubsub-publisher HEALTH_PORT HOST:PORT,... SUBS MESSAGES SEQ".into());
    };
    let s = sizes(rest, 3)?;
    let (subs, n, seq) = (s[0] as i64, s[1], s[2]);
    let (system, cluster) = start(port(p)?, peers(list)?)?;
    let rt = system.runtime().clone();
    let metrics = rt
        .block_on(rt.spawn(run_publisher(cluster, subs, n, seq)))
        .map_err(|e| format!("the publisher task failed: {e}"))??;
    report_to_parent(&metrics);
    Ok(())
}

async fn run_publisher(
    cluster: Cluster,
    subs: i64,
    n: u64,
    seq: u64,
) -> Result<Vec<Metric>, String> {
    if !cluster
        .member_list()
        .wait_until(WAIT, |t| t.len() >= 2)
        .await
    {
        return Err("member 2 never joined".into());
    }
    let other = cluster
        .member_list()
        .members()
        .into_iter()
        .map(|m| m.address())
        .find(|a| a != cluster.address())
        .ok_or("no member 2")?;
    let stats = Pid::new(other, STATS);
    let root = cluster.system().root();
    let ask = |cmd: i64| {
        let (root, stats) = (root.clone(), stats.clone());
        async move {
            root.request_future(&stats, Ping { seq: cmd }, WAIT)
                .await
                .map_err(|e| format!("member 2 command {cmd}: {e}"))?
                .downcast_ref::<Pong>()
                .map(|p| p.seq)
                .ok_or_else(|| format!("member 2 command {cmd}: not a Pong"))
        }
    };
    // How often the deliveries are counted: 1 ms, or `PUBSUB_POLL_MS` (a profile of member 2
    // under callgrind sets it high, so the counting requests do not dominate the profile;
    // the rate is taken from the time of the last delivery, not from the polls).
    let poll = Duration::from_millis(
        std::env::var("PUBSUB_POLL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
    );
    let await_deliveries = |want: i64| {
        let ask = &ask;
        async move {
            let deadline = Instant::now() + WAIT;
            loop {
                let got = ask(-1).await?;
                if got >= want {
                    return Ok::<(), String>(());
                }
                if Instant::now() > deadline {
                    return Err(format!("only {got} of {want} deliveries"));
                }
                tokio::time::sleep(poll).await;
            }
        }
    };
    ask(-10).await?;
    // Warm-up: the topic activated, every subscriber reached once.
    let publisher = cluster.publisher();
    publisher
        .publish(TOPIC, Ping { seq: now_ns() })
        .await
        .map_err(|e| e.to_string())?;
    await_deliveries(subs).await?;
    ask(-3).await?;

    let producer = cluster.batching_producer(TOPIC, ProducerConfig::default());
    let start = now_ns();
    let mut results = Vec::with_capacity(n as usize);
    for _ in 0..n {
        // A throughput-phase message: minus the phase's number of messages (member 2's
        // subscribers count it and read the clock at their last one).
        let r = producer
            .produce_wait(Ping { seq: -(n as i64) })
            .await
            .map_err(|e| e.to_string())?;
        results.push(r);
    }
    for r in results {
        r.await.map_err(|e| format!("produce: {e}"))?;
    }
    await_deliveries(n as i64 * subs).await?;
    let took = Duration::from_nanos((ask(-2).await? - start).max(1) as u64);
    let mut metrics = vec![Metric::new(
        "pubsub",
        (n as i64 * subs) as f64 / took.as_secs_f64(),
        "msg/s",
    )];

    // Which member hosts the topic (hashed over the random ports): one network hop to the
    // subscribers from the publisher's member, two (a request and its answer) otherwise.
    let host = match cluster.member_list().owner(TOPIC_KIND, TOPIC) {
        Some(a) if a == cluster.address() => "publisher's",
        _ => "subscribers'",
    };
    println!("NOTE topic on the {host} member");
    ask(-3).await?;
    // One message in flight: the next is published once every subscriber has this one.
    for i in 1..=seq as i64 {
        publisher
            .publish(TOPIC, Ping { seq: now_ns() })
            .await
            .map_err(|e| e.to_string())?;
        root.request_future(&stats, Pong { seq: i * subs }, WAIT)
            .await
            .map_err(|e| format!("member 2: message {i} of {seq} not delivered: {e}"))?;
    }
    metrics.push(Metric::new(
        "pubsub:p50",
        ask(-4).await? as f64 / 1000.0,
        "us",
    ));
    metrics.push(Metric::new(
        "pubsub:p99",
        ask(-5).await? as f64 / 1000.0,
        "us",
    ));
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protoactor_testkit::process::args;

    #[test]
    fn sizes_are_checked() {
        assert_eq!(sizes(&args("100 5 7"), 3), Ok(vec![100, 5, 7]));
        assert!(sizes(&args("100 0 7"), 3).is_err());
        assert!(sizes(&args("100 5"), 3).is_err());
        assert!(member_main(&args("notaport 127.0.0.1:1 100")).is_err());
        assert!(publisher_main(&args("1 127.0.0.1:1 5")).is_err());
    }

    #[test]
    fn a_waiter_is_answered_once_the_count_reaches_its_number() {
        let to = Pid::new("127.0.0.1:1", "future$1");
        let mut st = Stats {
            count: 199,
            waiter: Some((200, to.clone())),
            ..Stats::default()
        };
        assert_eq!(st.reached(), None);
        st.count = 200;
        assert_eq!(st.reached(), Some(to));
        assert_eq!(st.reached(), None, "answered once");
    }

    #[test]
    fn a_tally_reads_the_clock_once_at_the_phases_last_message() {
        let t = Tally::default();
        let no_clock = || -> i64 { panic!("the clock read before the last message") };
        t.count(3, no_clock);
        t.count(3, no_clock);
        t.count(3, || 42);
        assert_eq!(totals(std::slice::from_ref(&t)), (3, 42));
        t.count(3, no_clock);
        assert_eq!(
            totals(std::slice::from_ref(&t)),
            (4, 42),
            "a 4th is counted, untimed"
        );
        t.reset();
        assert_eq!(totals(std::slice::from_ref(&t)), (0, 0));
    }

    #[test]
    fn the_totals_sum_the_counts_and_take_the_latest_last_delivery() {
        let tallies: Vec<Tally> = (0..3).map(|_| Tally::default()).collect();
        assert_eq!(totals(&tallies), (0, 0));
        for (t, at) in tallies.iter().zip([30, 10, 20]) {
            t.count(2, || at);
            t.count(2, || at);
        }
        assert_eq!(totals(&tallies), (6, 30));
        assert_eq!(
            std::mem::align_of::<Tally>(),
            128,
            "a cache line (pair) of its own"
        );
    }
}
