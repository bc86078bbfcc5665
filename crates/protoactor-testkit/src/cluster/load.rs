//! A calling load for churn scenarios: a caller in this process ([`Node`]) calls the logged
//! hello grains of [`super::activations`] (which answer their PID id) without pause, several
//! calls in flight, and records which activation answered each identity and when; the tests
//! wait on those answers (an identity answering again from another member, every identity
//! answering after an instant) and print the failures of each step.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use protoactor_cluster::CallOptions;

use super::activations::now_us;
use super::hello::{HelloRequest, HelloResponse};
use super::scenario::Node;
use crate::wait::poll_until;

/// A run of answers of one identity from one activation (times in µs, [`now_us`]).
#[derive(Debug, Clone)]
pub struct Run {
    /// The answering member's address.
    pub address: String,
    /// The answering activation's PID id.
    pub pid: String,
    /// When its first answer of the run came.
    pub first: u64,
    /// When its last answer of the run came.
    pub last: u64,
}

/// What the load saw: the runs of answers per identity, and the calls and failures since
/// the last [`Load::take_failures`].
#[derive(Default)]
pub struct Seen {
    /// Identity -> its runs of answers, in order.
    pub runs: HashMap<String, Vec<Run>>,
    /// Calls since the last report.
    pub calls: u64,
    /// Failed calls since the last report.
    pub failed: u64,
    /// The first few failures since the last report.
    pub errors: Vec<String>,
}

impl Seen {
    /// True when `id` answered at or after `t` (µs) from an address other than `not`.
    pub fn answered_since(&self, id: &str, t: u64, not: Option<&str>) -> bool {
        self.runs.get(id).is_some_and(|rs| {
            rs.iter()
                .any(|r| r.last >= t && not.is_none_or(|n| r.address != n))
        })
    }

    /// The identities whose last answer before `t` came from `address`.
    pub fn living_at(&self, address: &str, t: u64) -> Vec<String> {
        self.runs
            .iter()
            .filter(|(_, rs)| {
                rs.iter()
                    .rev()
                    .find(|r| r.first <= t)
                    .is_some_and(|r| r.address == address)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// For the identities `ids`: the longest time (ms) from `t` to their first answer at or
    /// after `t` from another address than `from` (identities with none yet are skipped).
    pub fn moved_after_ms(&self, ids: &[String], t: u64, from: &str) -> u64 {
        ids.iter()
            .filter_map(|id| {
                self.runs
                    .get(id)?
                    .iter()
                    .find(|r| r.first >= t && r.address != from)
                    .map(|r| (r.first - t) / 1000)
            })
            .max()
            .unwrap_or(0)
    }
}

/// The load: `workers` tasks on the caller's runtime, each calling its share of the
/// identities in turn until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    /// What was seen so far.
    pub seen: Arc<Mutex<Seen>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The identities called.
    pub ids: Vec<String>,
    /// Longest wait of [`Load::wait`] and the waits built on it.
    pub patience: Duration,
}

impl Load {
    /// Starts calling `n` identities `<prefix><i>` of `kind` through `caller`, `workers`
    /// calls in flight, each call with `opts`; waits are bounded by `patience`.
    pub fn start(
        caller: &Node,
        kind: &str,
        prefix: &str,
        n: usize,
        workers: usize,
        opts: CallOptions,
        patience: Duration,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let ids: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
        let mut tasks = Vec::new();
        for w in 0..workers {
            let mine: Vec<String> = ids.iter().skip(w).step_by(workers).cloned().collect();
            let (cluster, stop, seen) = (caller.cluster.clone(), stop.clone(), seen.clone());
            let (kind, opts) = (kind.to_string(), opts.clone());
            tasks.push(caller.system.runtime().spawn(async move {
                while !stop.load(Ordering::Acquire) {
                    for id in &mine {
                        let r = cluster
                            .request_as::<HelloResponse, _>(
                                id.as_str(),
                                kind.as_str(),
                                HelloRequest { name: "l".into() },
                                &opts,
                            )
                            .await;
                        let t = now_us();
                        record(&mut seen.lock(), id, r, t);
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                    }
                }
            }));
        }
        Load {
            stop,
            seen,
            tasks,
            ids,
            patience,
        }
    }

    /// Waits (at most the patience) until `f` holds on what was seen.
    pub fn wait(&self, what: &str, f: impl Fn(&Seen) -> bool) {
        poll_until(what, self.patience, || f(&self.seen.lock()).then_some(()));
    }

    /// Waits until every identity answered at or after `t` (µs).
    pub fn await_round(&self, what: &str, t: u64) {
        let ids = self.ids.clone();
        self.wait(what, |s| ids.iter().all(|id| s.answered_since(id, t, None)));
    }

    /// Waits until every identity in `hosted` answered at or after `t` from another address
    /// than `from`; returns the longest time (ms) from `t` to such an answer.
    pub fn await_moved(&self, what: &str, hosted: &[String], t: u64, from: &str) -> u64 {
        self.wait(what, |s| {
            hosted.iter().all(|id| s.answered_since(id, t, Some(from)))
        });
        self.seen.lock().moved_after_ms(hosted, t, from)
    }

    /// The calls and failures since the last call, as a figure line
    /// (`calls=N failed=N errors=[..]`); resets them.
    pub fn take_failures(&self) -> String {
        let mut s = self.seen.lock();
        let line = format!(
            "calls={} failed={} errors={:?}",
            s.calls, s.failed, s.errors
        );
        s.calls = 0;
        s.failed = 0;
        s.errors.clear();
        line
    }

    /// Stops calling; what was seen.
    pub fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Release);
        for t in self.tasks {
            t.abort();
        }
        Arc::try_unwrap(self.seen)
            .map(|m| m.into_inner())
            .unwrap_or_else(|a| std::mem::take(&mut *a.lock()))
    }
}

fn record(
    s: &mut Seen,
    id: &str,
    r: Result<HelloResponse, protoactor_cluster::ClusterError>,
    t: u64,
) {
    s.calls += 1;
    match r {
        Ok(r) => {
            let runs = s.runs.entry(id.to_string()).or_default();
            match runs.last_mut() {
                Some(last) if last.pid == r.message && last.address == r.address => last.last = t,
                _ => runs.push(Run {
                    address: r.address,
                    pid: r.message,
                    first: t,
                    last: t,
                }),
            }
        }
        Err(e) => {
            s.failed += 1;
            if s.errors.len() < 5 {
                s.errors.push(format!("{id}: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(address: &str, pid: &str, first: u64, last: u64) -> Run {
        Run {
            address: address.into(),
            pid: pid.into(),
            first,
            last,
        }
    }

    #[test]
    fn runs_tell_where_an_identity_lived_and_when_it_moved() {
        let mut s = Seen::default();
        s.runs.insert(
            "x".into(),
            vec![run("a", "1", 10, 20), run("b", "2", 35, 50)],
        );
        s.runs.insert("y".into(), vec![run("b", "3", 5, 60)]);
        assert_eq!(s.living_at("a", 25), vec!["x".to_string()]);
        assert!(s.answered_since("x", 30, Some("a")));
        assert!(!s.answered_since("x", 55, None));
        // x moved 15 µs after 20 (rounded down to ms: 0); y never left b.
        assert_eq!(s.moved_after_ms(&["x".into()], 20, "a"), 0);
        s.runs.get_mut("x").unwrap()[1].first = 20 + 7_000;
        assert_eq!(s.moved_after_ms(&["x".into(), "y".into()], 20, "a"), 7);
    }
}
