//! What every implementation shares: the measured metrics, process memory readings and the
//! small deterministic helpers the workloads use (so all implementations do the same work).

use std::time::Duration;

/// How long one workload may take inside one child process before it counts as hung.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// One measured value, as a child process reports it.
#[derive(Debug, Clone)]
pub struct Metric {
    /// Row name: the workload, or `workload:detail` for a secondary value.
    pub name: String,
    /// The value.
    pub value: f64,
    /// `msg/s`, `events/s`, `ms`, `us` or `B`.
    pub unit: String,
}

impl Metric {
    /// A throughput metric: `messages` in `elapsed`.
    pub fn rate(name: &str, messages: u64, elapsed: Duration) -> Self {
        Self::new(name, messages as f64 / elapsed.as_secs_f64(), "msg/s")
    }
    /// A duration in milliseconds.
    pub fn millis(name: &str, elapsed: Duration) -> Self {
        Self::new(name, elapsed.as_secs_f64() * 1e3, "ms")
    }
    /// A metric of any unit.
    pub fn new(name: &str, value: f64, unit: &str) -> Self {
        Metric {
            name: name.to_string(),
            value,
            unit: unit.to_string(),
        }
    }
}

/// The result of one workload run in a child: its metrics, or why it failed.
pub type RunResult = Result<Vec<Metric>, String>;

/// Reads a `Vm…:` line (kB) of /proc/self/status; 0 where there is no procfs.
pub fn proc_status_kb(key: &str) -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Writes a child's results to stdout in the lines the harness reads (`RESULT name value
/// unit` per metric, then `RSS <peak kB>`). A closed stdout (the reader went away) is not
/// worth a panic.
pub fn report_to_parent(metrics: &[Metric]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for m in metrics {
        let _ = writeln!(out, "RESULT {} {} {}", m.name, m.value, m.unit);
    }
    let _ = writeln!(out, "RSS {}", proc_status_kb("VmHWM"));
    let _ = out.flush();
}

/// Number of actors in a fan-out tree with `leaves` leaves.
pub fn tree_actors(leaves: u64, div: u64) -> u64 {
    let mut total = 0;
    let mut n = leaves;
    loop {
        total += n;
        if n <= 1 || div <= 1 {
            return total;
        }
        n /= div;
    }
}

/// The sum 0 + 1 + … + (leaves − 1) that the spawn and skynet trees compute.
pub fn expected_sum(leaves: u64) -> i64 {
    (leaves as i64) * (leaves as i64 - 1) / 2
}

/// Peak bytes per actor (`<workload>:peak-bytes-per-actor`): the growth of the peak
/// resident set over `base_kb`, per actor.
pub fn peak_bytes_per_actor(workload: &str, base_kb: u64, actors: u64) -> Metric {
    let peak = proc_status_kb("VmHWM");
    Metric::new(
        &format!("{workload}:peak-bytes-per-actor"),
        peak.saturating_sub(base_kb) as f64 * 1024.0 / actors as f64,
        "B",
    )
}

/// Savina fork-join's per-message work (the same in every implementation).
#[inline]
pub fn work(seed: f64) -> f64 {
    seed.sin() * seed.cos()
}

/// The chameneos colour rule: meeting another colour gives the third one.
pub fn complement(a: u8, b: u8) -> u8 {
    if a == b {
        a
    } else {
        3 - a - b
    }
}

/// A tiny PRNG so that every implementation of `savina-big` picks the same peers.
#[derive(Clone, Copy)]
pub struct XorShift(u64);

impl XorShift {
    /// The generator of actor `i`.
    pub fn for_actor(i: usize) -> Self {
        XorShift((i as u64).wrapping_mul(2654435761).wrapping_add(1))
    }
    /// The next index below `n`.
    pub fn next(&mut self, n: usize) -> usize {
        let mut v = self.0;
        v ^= v << 13;
        v ^= v >> 7;
        v ^= v << 17;
        self.0 = v;
        (v % n as u64) as usize
    }
}

/// p50 and p99 (µs) of request round trips; sorts `lat`.
pub fn latency_metrics(lat: &mut [Duration]) -> Vec<Metric> {
    latency_metrics_named("request", lat)
}

/// p50 and p99 of `lat` in microseconds, as `<name>:p50` and `<name>:p99`.
pub fn latency_metrics_named(name: &str, lat: &mut [Duration]) -> Vec<Metric> {
    lat.sort_unstable();
    let n = lat.len();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    vec![
        Metric::new(&format!("{name}:p50"), us(lat[n / 2]), "us"),
        Metric::new(&format!("{name}:p99"), us(lat[n * 99 / 100]), "us"),
    ]
}

/// Checks that the spawn/skynet tree parameters make an exact tree.
pub fn check_tree(leaves: u64, div: u64) -> Result<(), String> {
    let mut n = leaves;
    while n > 1 {
        if div < 2 || !n.is_multiple_of(div) {
            return Err(format!(
                "leaves ({leaves}) must be a power of the fan-out ({div})"
            ));
        }
        n /= div;
    }
    Ok(())
}

/// Takes `n` parameters from `p`, or explains what is missing.
pub fn params<const N: usize>(workload: &str, p: &[u64]) -> Result<[u64; N], String> {
    p.get(..N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| format!("{workload}: needs {N} size parameters, got {}", p.len()))
}

/// Resident-set growth per actor, for the `idle-memory` workload (read after the allocator
/// gave its free pages back).
pub fn idle_metric(base_kb: u64, now_kb: u64, actors: u64) -> Metric {
    Metric::new(
        "idle-memory",
        now_kb.saturating_sub(base_kb) as f64 * 1024.0 / actors as f64,
        "B",
    )
}

/// `N` distinct free TCP ports on 127.0.0.1 for child processes to listen on. Every
/// listener is held until all are bound: ports picked one after another can come back
/// equal once the first listener is closed (a failed round of the `pubsub` run,
/// 2026-12-07).
pub fn free_ports<const N: usize>() -> Result<[u16; N], String> {
    let mut listeners = Vec::with_capacity(N);
    let mut ports = [0u16; N];
    for port in &mut ports {
        let l = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
        *port = l
            .local_addr()
            .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?
            .port();
        listeners.push(l);
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_sizes() {
        assert_eq!(tree_actors(1_000_000, 10), 1_111_111);
        assert_eq!(tree_actors(100, 10), 111);
        assert_eq!(expected_sum(4), 6);
        assert!(check_tree(1000, 10).is_ok());
        assert!(check_tree(1200, 10).is_err());
    }

    #[test]
    fn colours_and_rng() {
        assert_eq!(complement(0, 1), 2);
        assert_eq!(complement(2, 2), 2);
        let mut r = XorShift::for_actor(3);
        let picks: Vec<_> = (0..100).map(|_| r.next(7)).collect();
        assert!(picks.iter().all(|&p| p < 7));
        assert!(picks.iter().any(|&p| p != picks[0]));
    }

    #[test]
    fn latency_percentiles() {
        let mut lat: Vec<_> = (1..=100).rev().map(Duration::from_micros).collect();
        let m = latency_metrics(&mut lat);
        assert_eq!(m[0].value.round(), 51.0);
        assert_eq!(m[1].value.round(), 100.0);
    }

    #[test]
    fn the_ports_are_distinct_and_free_again_once_returned() {
        for _ in 0..200 {
            let [a, b, c] = free_ports::<3>().expect("three ports");
            assert!(a != b && b != c && a != c, "{a} {b} {c}");
            std::net::TcpListener::bind(("127.0.0.1", a)).expect("released");
        }
    }
}
