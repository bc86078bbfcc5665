//! One `Framework` trait for the Rust implementations (protoactor-rs, kameo, ractor, actix)
//! and the one dispatch that maps a workload name and its sizes to a call, checks the sizes,
//! and turns what the implementation measured into the reported metrics. Each implementation
//! only writes the actors and the timed window, in its own crate's idiom; message counts,
//! metric names and the memory readings are written here once, so they cannot drift apart.

use std::any::Any;
use std::time::Duration;

use crate::alloc;
use crate::common::*;

/// The time a workload's measured window took, or why it failed.
pub type Timed = Result<Duration, String>;

/// Where a throughput workload's driver runs: the code that sends into the actors from
/// outside them (fork-join's and counting's sending loops, in-process's start messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// A task on the runtime the actors run on (actix: the system arbiter), as
    /// protoactor-go's driver is its main goroutine, scheduled on a P like every actor's
    /// goroutine: the rows compared with Go.
    Task,
    /// The harness's main thread (actix: a thread of its own), outside the runtime, so
    /// every wake-up it causes goes through the runtime's shared queue: the `-outside` rows.
    Outside,
}

/// The workloads measured in both driver shapes: the `-outside` row of each runs the
/// driver with [`Driver::Outside`].
pub const DRIVEN: &[&str] = &["in-process", "savina-counting", "savina-fork-join"];

/// The workload a row name runs and where its driver runs (`savina-fork-join-outside`:
/// `savina-fork-join`, outside).
pub fn driven(workload: &str) -> (&str, Driver) {
    match workload.strip_suffix("-outside") {
        Some(base) if DRIVEN.contains(&base) => (base, Driver::Outside),
        _ => (workload, Driver::Task),
    }
}

/// Runs `send`, a driver's sending (returning when the window started, or what the
/// workload needs), where `driver` says: as a task on the tokio runtime `rt` the actors
/// run on, or on the calling thread (the harness's main thread).
pub fn drive<R: Send + 'static>(
    rt: &tokio::runtime::Handle,
    driver: Driver,
    send: impl FnOnce() -> R + Send + 'static,
) -> Result<R, String> {
    match driver {
        Driver::Outside => Ok(send()),
        Driver::Task => rt
            .block_on(rt.spawn(async move { send() }))
            .map_err(|e| format!("driver task: {e}")),
    }
}

/// A Rust actor framework running the local workloads. Every method runs one workload to
/// completion on the runtime that [`Framework::start`] made and returns its timed window
/// (for the throughput rows, from the first message sent by the harness to the last one
/// handled; for the trees, from spawning the top to the answer). Sizes arrive checked.
pub trait Framework: Sized {
    /// The implementation's name (rows, errors).
    const NAME: &'static str;

    /// Starts the framework's runtime (an actor system, a tokio runtime, an actix system).
    fn start() -> Result<Self, String>;

    /// Shuts the runtime down after a workload (by default, dropping it).
    fn stop(self) {}

    /// `pairs` ping/echo pairs; each ping sends `per_pair` messages in bursts of `batch`,
    /// each message a fresh one carrying its sender, which the receiver answers to. The
    /// start messages come from the `driver`.
    fn in_process(&self, pairs: u64, per_pair: u64, batch: u64, driver: Driver) -> Timed;

    /// A fan-out-`div` tree over `leaves` leaves: every node spawns its children as its own
    /// children and asks them for their sums; leaves answer and stop, inner nodes stay.
    fn spawn_tree(&self, leaves: u64, div: u64) -> Timed;

    /// protoactor-go's own spawn benchmark: the same tree and requests, but every actor
    /// spawned from the root (top level) and none stops.
    fn spawn_root(&self, leaves: u64, div: u64) -> Timed;

    /// Two actors, `n` round trips started by one start message.
    fn ping_pong(&self, n: u64) -> Timed;

    /// `n` one-way messages from the `driver` into one counter, then its request for the
    /// count.
    fn counting(&self, n: u64, driver: Driver) -> Timed;

    /// `workers` actors, `per_worker` messages each from the `driver`, a little math per
    /// message.
    fn fork_join(&self, workers: u64, per_worker: u64, driver: Driver) -> Timed;

    /// `actors` in a ring, a token passed `passes` times.
    fn thread_ring(&self, actors: u64, passes: u64) -> Timed;

    /// `actors` actors each sending `pings` pings to random peers, answered by pongs.
    fn big(&self, actors: u64, pings: u64) -> Timed;

    /// `creatures` chameneos meeting `meetings` times through one mall actor.
    fn chameneos(&self, creatures: u64, meetings: u64) -> Timed;

    /// The skynet tree: children send sums to their parent and stop, inner nodes too.
    fn skynet(&self, leaves: u64, div: u64) -> Timed;

    /// `n` sequential request round trips to an echo actor: the latencies of a requester
    /// that is a task on the implementation's runtime (`request`) and of one that is an
    /// actor (`request-actor`), plus the rows an implementation has of its own
    /// (`request-outside`, `request-blocking`).
    fn request(&self, n: u64) -> RunResult;

    /// Spawns `n` actors and has each answer one request; returns what keeps them alive
    /// while the harness reads the memory.
    fn idle_actors(&self, n: u64) -> Result<Box<dyn Any>, String>;

    /// Workloads outside the common set (protoactor-rs's `persistence`), run without
    /// [`Framework::start`]: `None` if the implementation does not have `workload`.
    fn extra(_workload: &str, _sizes: &[u64]) -> Option<RunResult> {
        None
    }
}

/// Runs `workload` with sizes `p` on `F` and returns the metrics to report.
pub fn run<F: Framework>(workload: &str, p: &[u64]) -> RunResult {
    if let Some(r) = F::extra(workload, p) {
        return r;
    }
    // Unknown names and bad sizes fail before a runtime is started.
    check(workload, p)?;
    let fw = F::start().map_err(|e| format!("{}: {e}", F::NAME))?;
    let r = measure(&fw, workload, p);
    fw.stop();
    r
}

/// Checks the sizes of `workload` (the same checks for every implementation).
fn check(workload: &str, p: &[u64]) -> Result<(), String> {
    let (workload, _) = driven(workload);
    match workload {
        "in-process" => {
            let [_, per_pair, batch] = params(workload, p)?;
            if batch == 0 || !per_pair.is_multiple_of(batch) {
                return Err("in-process: messages per pair must be a multiple of the batch".into());
            }
        }
        "spawn" | "spawn-root" | "skynet" => {
            let [leaves, div] = params(workload, p)?;
            check_tree(leaves, div)?;
        }
        "savina-ping-pong" | "savina-counting" | "request" | "idle-memory" => {
            if params::<1>(workload, p)?[0] == 0 {
                return Err(format!("{workload}: needs a size of at least 1"));
            }
        }
        "savina-fork-join" | "savina-thread-ring" | "savina-big" | "savina-chameneos" => {
            let [a, b] = params(workload, p)?;
            if a == 0 || b == 0 {
                return Err(format!("{workload}: sizes must be at least 1"));
            }
        }
        other => return Err(format!("unknown workload {other}")),
    }
    Ok(())
}

fn measure<F: Framework>(fw: &F, row: &str, p: &[u64]) -> RunResult {
    // The metric carries the row's name (`-outside` included), the match the workload's.
    let rate = |messages: u64, t: Timed| Ok(vec![Metric::rate(row, messages, t?)]);
    let (workload, driver) = driven(row);
    match workload {
        "in-process" => {
            let [pairs, per_pair, batch] = params(workload, p)?;
            rate(
                2 * per_pair * pairs,
                fw.in_process(pairs, per_pair, batch, driver),
            )
        }
        "spawn" | "spawn-root" => {
            let [leaves, div] = params(workload, p)?;
            let base = proc_status_kb("VmRSS");
            let took = if workload == "spawn" {
                fw.spawn_tree(leaves, div)?
            } else {
                fw.spawn_root(leaves, div)?
            };
            Ok(vec![
                Metric::millis(workload, took),
                peak_bytes_per_actor(workload, base, tree_actors(leaves, div)),
            ])
        }
        "savina-ping-pong" => {
            let n = params::<1>(workload, p)?[0];
            rate(2 * n, fw.ping_pong(n))
        }
        "savina-counting" => {
            let n = params::<1>(workload, p)?[0];
            rate(n, fw.counting(n, driver))
        }
        "savina-fork-join" => {
            let [w, m] = params(workload, p)?;
            rate(w * m, fw.fork_join(w, m, driver))
        }
        "savina-thread-ring" => {
            let [a, n] = params(workload, p)?;
            rate(n, fw.thread_ring(a, n))
        }
        "savina-big" => {
            let [a, n] = params(workload, p)?;
            rate(2 * a * n, fw.big(a, n))
        }
        "savina-chameneos" => {
            let [c, n] = params(workload, p)?;
            rate(4 * n, fw.chameneos(c, n))
        }
        "skynet" => {
            let [leaves, div] = params(workload, p)?;
            Ok(vec![Metric::millis(workload, fw.skynet(leaves, div)?)])
        }
        "request" => fw.request(params::<1>(workload, p)?[0]),
        "idle-memory" => {
            let n = params::<1>(workload, p)?[0];
            idle_memory(n, || fw.idle_actors(n))
        }
        other => Err(format!("unknown workload {other}")),
    }
}

/// The idle-memory readings around `spawn` (which spawns `n` actors): the resident set
/// after the allocator gave its free pages back to the OS, as protoactor-go's row reads it
/// after `debug.FreeOSMemory()`, and the live heap (the counting allocator), as Go's
/// `HeapAlloc`; both per actor.
pub fn idle_memory(n: u64, spawn: impl FnOnce() -> Result<Box<dyn Any>, String>) -> RunResult {
    alloc::release_free_memory();
    let (base_rss, base_heap) = (proc_status_kb("VmRSS"), alloc::live_bytes());
    let actors = spawn()?;
    alloc::release_free_memory();
    let (rss, heap) = (proc_status_kb("VmRSS"), alloc::live_bytes());
    drop(actors);
    let mut metrics = vec![idle_metric(base_rss, rss, n)];
    if alloc::counting() {
        metrics.push(Metric::new(
            "idle-memory:live-heap",
            (heap - base_heap) as f64 / n as f64,
            "B",
        ));
    }
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Records the calls it gets and answers each with one millisecond.
    struct Recorder(RefCell<Vec<String>>);

    impl Recorder {
        fn log(&self, s: String) -> Timed {
            self.0.borrow_mut().push(s);
            Ok(Duration::from_millis(1))
        }
    }

    thread_local! {
        static CALLS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    impl Framework for Recorder {
        const NAME: &'static str = "recorder";
        fn start() -> Result<Self, String> {
            Ok(Recorder(RefCell::default()))
        }
        fn stop(self) {
            CALLS.with(|c| c.borrow_mut().extend(self.0.into_inner()));
        }
        fn in_process(&self, a: u64, b: u64, c: u64, d: Driver) -> Timed {
            self.log(format!("in_process {a} {b} {c} {d:?}"))
        }
        fn spawn_tree(&self, a: u64, b: u64) -> Timed {
            self.log(format!("spawn_tree {a} {b}"))
        }
        fn spawn_root(&self, a: u64, b: u64) -> Timed {
            self.log(format!("spawn_root {a} {b}"))
        }
        fn ping_pong(&self, n: u64) -> Timed {
            self.log(format!("ping_pong {n}"))
        }
        fn counting(&self, n: u64, d: Driver) -> Timed {
            self.log(format!("counting {n} {d:?}"))
        }
        fn fork_join(&self, a: u64, b: u64, d: Driver) -> Timed {
            self.log(format!("fork_join {a} {b} {d:?}"))
        }
        fn thread_ring(&self, a: u64, b: u64) -> Timed {
            self.log(format!("thread_ring {a} {b}"))
        }
        fn big(&self, a: u64, b: u64) -> Timed {
            self.log(format!("big {a} {b}"))
        }
        fn chameneos(&self, a: u64, b: u64) -> Timed {
            self.log(format!("chameneos {a} {b}"))
        }
        fn skynet(&self, a: u64, b: u64) -> Timed {
            self.log(format!("skynet {a} {b}"))
        }
        fn request(&self, n: u64) -> RunResult {
            self.log(format!("request {n}"))?;
            Ok(vec![Metric::new("request:p50", 1.0, "us")])
        }
        fn idle_actors(&self, n: u64) -> Result<Box<dyn Any>, String> {
            self.log(format!("idle_actors {n}"))?;
            Ok(Box::new(vec![0u8; 64 * n as usize]))
        }
    }

    fn calls() -> Vec<String> {
        CALLS.with(|c| c.take())
    }

    #[test]
    fn dispatches_each_workload_with_its_sizes_and_counts() {
        let m = run::<Recorder>("in-process", &[4, 1000, 100]).unwrap();
        assert_eq!(calls(), ["in_process 4 1000 100 Task"]);
        // 2 × per_pair × pairs messages in 1 ms
        assert_eq!(m[0].name, "in-process");
        assert!((m[0].value - 8_000_000.0).abs() < 1.0, "{}", m[0].value);

        // The `-outside` rows: the same workload and count, the driver outside the runtime.
        let m = run::<Recorder>("in-process-outside", &[4, 1000, 100]).unwrap();
        assert_eq!(calls(), ["in_process 4 1000 100 Outside"]);
        assert_eq!(m[0].name, "in-process-outside");
        assert!((m[0].value - 8_000_000.0).abs() < 1.0, "{}", m[0].value);
        let m = run::<Recorder>("savina-fork-join-outside", &[60, 100]).unwrap();
        assert_eq!(calls(), ["fork_join 60 100 Outside"]);
        assert_eq!(m[0].name, "savina-fork-join-outside");
        assert!((m[0].value - 6_000_000.0).abs() < 1.0, "{}", m[0].value);
        let m = run::<Recorder>("savina-counting", &[500]).unwrap();
        assert_eq!(calls(), ["counting 500 Task"]);
        assert_eq!(m[0].name, "savina-counting");
        run::<Recorder>("savina-counting-outside", &[500]).unwrap();
        assert_eq!(calls(), ["counting 500 Outside"]);

        let m = run::<Recorder>("spawn-root", &[100, 10]).unwrap();
        assert_eq!(calls(), ["spawn_root 100 10"]);
        assert_eq!(m[0].name, "spawn-root");
        assert_eq!(m[1].name, "spawn-root:peak-bytes-per-actor");
        run::<Recorder>("spawn", &[100, 10]).unwrap();
        assert_eq!(calls(), ["spawn_tree 100 10"]);

        let m = run::<Recorder>("savina-chameneos", &[10, 50]).unwrap();
        assert_eq!(calls(), ["chameneos 10 50"]);
        assert!((m[0].value - 200_000.0).abs() < 1.0);

        let m = run::<Recorder>("idle-memory", &[1000]).unwrap();
        assert_eq!(calls(), ["idle_actors 1000"]);
        assert_eq!(m[0].name, "idle-memory");
    }

    #[test]
    fn bad_sizes_and_names_fail_before_starting() {
        for (w, p) in [
            ("in-process", &[2, 1000, 30][..]),
            ("in-process", &[2, 1000][..]),
            ("spawn", &[1200, 10][..]),
            ("skynet", &[][..]),
            ("request", &[0][..]),
            ("savina-big", &[0, 10][..]),
            ("savina-fork-join-outside", &[0, 10][..]),
            ("request-outside", &[10][..]),
            ("nope", &[1][..]),
        ] {
            assert!(run::<Recorder>(w, p).is_err(), "{w} {p:?}");
        }
        assert!(calls().is_empty());
    }
}
