//! Request round trips on protoactor-rs in one requester shape, for profiling the request
//! path with `valgrind --tool=callgrind` (instructions per round trip: run it with two
//! counts and divide the difference) or `strace -f -c -e trace=futex,write` (wake-ups per
//! round trip). It prints the mean, p50 and p99 per round trip.
//!
//! ```text
//! cargo build --release -p protoactor-bench --example request_profile
//! target/release/examples/request_profile <task|outside|blocking|actor> <round trips>
//! ```
//!
//! - `task`: the requester is a task on the system's runtime, `.await`ing `request_future`
//!   (the `request` row);
//! - `async`: the same task awaiting `request_async` (sent by the await; an idle echo's
//!   turn runs in the requester's task);
//! - `outside`: `block_on` on the main thread (the `request-outside` row);
//! - `blocking`: a plain thread's blocking `result()` (the `request-blocking` row);
//! - `actor`: an actor requesting with `ctx.request`, the reply arriving as a message
//!   (the `request-actor` row);
//! - any of them with `-notimeout` (`task-notimeout`): requests without a deadline, so no
//!   timer, to see what the timer costs.

use std::time::{Duration, Instant};

use protoactor::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args
        .first()
        .map(String::as_str)
        .unwrap_or("task")
        .to_string();
    let n: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let system = ActorSystem::new();
    let root = system.root();
    let echo = root.spawn(&Props::from_func(|ctx| {
        if let Some(i) = ctx.message_as::<u64>() {
            ctx.respond(*i);
        }
    }));
    // `<mode>-notimeout`: no deadline, so no timer (to see what the timer costs).
    let (mode, timeout) = match mode.strip_suffix("-notimeout") {
        Some(m) => (m.to_string(), ActorFuture::NO_TIMEOUT),
        None => (mode, Duration::from_secs(5)),
    };
    let start = Instant::now();
    let mut lat = Vec::with_capacity(n as usize);
    match mode.as_str() {
        "task" => {
            let (root, echo) = (root.clone(), echo.clone());
            let task = system
                .runtime()
                .spawn(async move { awaited_round_trips(&root, &echo, n, timeout).await });
            lat = system.runtime().block_on(task).expect("requester task");
        }
        "async" => {
            let (root, echo) = (root.clone(), echo.clone());
            let task = system.runtime().spawn(async move {
                let mut lat = Vec::with_capacity(n as usize);
                for i in 0..n {
                    let t = Instant::now();
                    let r = root.request_async(&echo, i, timeout).await;
                    lat.push(t.elapsed());
                    assert_eq!(
                        r.ok().and_then(|m| m.downcast_ref::<u64>().copied()),
                        Some(i)
                    );
                }
                lat
            });
            lat = system.runtime().block_on(task).expect("requester task");
        }
        "outside" => {
            lat = system
                .runtime()
                .block_on(awaited_round_trips(&root, &echo, n, timeout))
        }
        "blocking" => {
            for i in 0..n {
                let t = Instant::now();
                let r = root.request_future(&echo, i, timeout).result_as::<u64>();
                lat.push(t.elapsed());
                assert_eq!(r, Ok(i));
            }
        }
        "actor" => {
            // The requester times each round trip itself (request sent -> reply received) and
            // hands the times over when done.
            let (done_tx, done_rx) = std::sync::mpsc::channel::<Vec<Duration>>();
            let target = echo.clone();
            let requester = root.spawn(&Props::from_producer(move || {
                let (target, done_tx) = (target.clone(), done_tx.clone());
                let mut times = Vec::with_capacity(n as usize);
                let mut sent = Instant::now();
                move |ctx: &mut Context| {
                    let next = if ctx.message_as::<&str>().is_some() {
                        Some(0)
                    } else {
                        ctx.message_as::<u64>().map(|i| {
                            times.push(sent.elapsed());
                            i + 1
                        })
                    };
                    match next {
                        Some(i) if i < n => {
                            sent = Instant::now();
                            ctx.request(&target, i)
                        }
                        Some(_) => done_tx
                            .send(std::mem::take(&mut times))
                            .expect("main waits"),
                        None => {}
                    }
                }
            }));
            root.send(&requester, "start");
            lat = done_rx.recv().expect("requester done");
        }
        other => panic!("unknown mode {other}: task, async, outside, blocking or actor"),
    }
    let took = start.elapsed();
    lat.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    // Every mode records each round trip; with none (n = 0) there is no percentile to print.
    let percentiles = match lat.len() {
        0 => String::from("no round trips timed"),
        l => format!(
            "p50 {:.2} us, p99 {:.2} us",
            us(lat[l / 2]),
            us(lat[l * 99 / 100])
        ),
    };
    println!(
        "{mode} (timeout {timeout:?}): {n} round trips, {:.2} us each, {percentiles}",
        us(took) / n.max(1) as f64
    );
    system.shutdown();
}

/// `n` sequential `request_future(..).await`s to `echo`, each reply checked; their latencies.
async fn awaited_round_trips(
    root: &RootContext,
    echo: &Pid,
    n: u64,
    timeout: Duration,
) -> Vec<Duration> {
    let mut lat = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        let r = root.request_future(echo, i, timeout).await;
        lat.push(t.elapsed());
        assert_eq!(
            r.ok().and_then(|m| m.downcast_ref::<u64>().copied()),
            Some(i)
        );
    }
    lat
}
