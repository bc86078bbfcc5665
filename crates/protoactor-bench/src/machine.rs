//! How busy the machine is: the load average, the CPU steal and the CPU time that processes
//! other than this harness and its children used. A benchmark on a shared machine measures
//! the machine as much as the code, so every run records these and marks what they spoil.

use std::time::{Duration, Instant};

/// Above this 1-minute load average at the start, a run is busy: it may not write a
/// results file unless `--allow-busy` is given, and its rows are marked.
pub const BUSY_LOAD: f64 = 1.0;
/// Rows of a workload during which other processes used more than this many cores on
/// average are marked busy.
pub const BUSY_OTHERS_CORES: f64 = 0.25;
/// Rows of a workload during which the hypervisor stole more than this share of the CPU
/// time (percent) are marked busy.
pub const BUSY_STEAL_PCT: f64 = 5.0;

/// The `cpu` line of `/proc/stat`, in clock ticks summed over all cores.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    /// Every field but guest time (already counted in user time).
    pub total: u64,
    /// Idle and I/O wait.
    pub idle: u64,
    /// Time the hypervisor ran something else while this VM wanted the CPU.
    pub steal: u64,
}

impl CpuTimes {
    /// Ticks spent running something (neither idle nor stolen).
    fn busy(&self) -> u64 {
        self.total.saturating_sub(self.idle + self.steal)
    }
}

/// Parses the first (all-core) `cpu` line of `/proc/stat`.
pub fn parse_proc_stat(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    if f.len() < 8 {
        return None;
    }
    Some(CpuTimes {
        total: f[..8].iter().sum(),
        idle: f[3] + f[4],
        steal: f[7],
    })
}

/// Parses this process's CPU time plus that of its children already waited for
/// (`utime stime cutime cstime` of `/proc/self/stat`), in clock ticks.
pub fn parse_self_stat(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) .. cstime (17) are at 11..15.
    f.get(11..15)?
        .iter()
        .map(|x| x.parse::<i64>().ok().map(|v| v.max(0) as u64))
        .sum()
}

/// The 1, 5 and 15-minute load averages as `/proc/loadavg` prints them, and the 1-minute one.
pub fn load_average() -> (String, Option<f64>) {
    match std::fs::read_to_string("/proc/loadavg") {
        Ok(s) => {
            let three: Vec<&str> = s.split_whitespace().take(3).collect();
            (three.join(" "), three.first().and_then(|x| x.parse().ok()))
        }
        Err(_) => ("unknown".into(), None),
    }
}

/// One reading of the counters.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot {
    at: Instant,
    cpu: Option<CpuTimes>,
    own: Option<u64>,
}

impl Snapshot {
    /// Reads the counters now.
    pub fn now() -> Self {
        Snapshot {
            at: Instant::now(),
            cpu: std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|s| parse_proc_stat(&s)),
            own: std::fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|s| parse_self_stat(&s)),
        }
    }
}

/// What the machine did between two snapshots.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Share of all CPU time the hypervisor stole, percent.
    pub steal_pct: f64,
    /// Cores used on average by processes other than this harness and its children
    /// (children count once they have been waited for, which the harness does per run).
    pub others_cores: f64,
}

impl Usage {
    /// Between `a` and `b`; `ticks_per_s` is the kernel's `USER_HZ` (100 on Linux).
    pub fn between(a: &Snapshot, b: &Snapshot, ticks_per_s: f64) -> Option<Usage> {
        let (ca, cb) = (a.cpu?, b.cpu?);
        let total = cb.total.checked_sub(ca.total)?;
        let secs = b.at.duration_since(a.at).as_secs_f64();
        if total == 0 || secs <= 0.0 {
            return None;
        }
        let busy = cb.busy().saturating_sub(ca.busy());
        let own = b.own?.saturating_sub(a.own?);
        Some(Usage {
            steal_pct: 100.0 * cb.steal.saturating_sub(ca.steal) as f64 / total as f64,
            others_cores: busy.saturating_sub(own) as f64 / ticks_per_s / secs,
        })
    }

    /// Why rows measured during this are not to be trusted, if they are not.
    pub fn busy_reason(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.others_cores > BUSY_OTHERS_CORES {
            why.push(format!(
                "other processes used {:.2} cores",
                self.others_cores
            ));
        }
        if self.steal_pct > BUSY_STEAL_PCT {
            why.push(format!("{:.1}% CPU steal", self.steal_pct));
        }
        (!why.is_empty()).then(|| why.join(", "))
    }
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "other processes {:.2} cores, steal {:.1}%",
            self.others_cores, self.steal_pct
        )
    }
}

/// The machine's state at the start or the end of a run: the load average and one second
/// of CPU use sampled then.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct MachineState {
    /// `/proc/loadavg`'s 1, 5 and 15-minute figures.
    pub load_average: String,
    /// The 1-minute figure.
    pub load1: Option<f64>,
    /// CPU steal and other processes' CPU use over one second.
    pub usage: Option<Usage>,
}

/// `USER_HZ`: the unit of `/proc/stat` and `/proc/self/stat` (100 on every Linux
/// architecture that matters here).
pub const TICKS_PER_S: f64 = 100.0;

impl MachineState {
    /// Reads the load average, then samples one second of CPU use (idle: the harness runs
    /// nothing meanwhile).
    pub fn sample() -> Self {
        let (load_average, load1) = load_average();
        let a = Snapshot::now();
        std::thread::sleep(Duration::from_secs(1));
        let b = Snapshot::now();
        MachineState {
            load_average,
            load1,
            usage: Usage::between(&a, &b, TICKS_PER_S),
        }
    }

    /// True when the 1-minute load average is above [`BUSY_LOAD`].
    pub fn is_busy(&self) -> bool {
        self.load1.is_some_and(|l| l > BUSY_LOAD)
    }
}

impl std::fmt::Display for MachineState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "load average {}", self.load_average)?;
        if let Some(u) = &self.usage {
            write!(f, "; over 1 s: {u}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat() {
        let s = "cpu  100 5 50 1000 20 3 2 40 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1\n";
        let t = parse_proc_stat(s).unwrap();
        assert_eq!(t.total, 100 + 5 + 50 + 1000 + 20 + 3 + 2 + 40);
        assert_eq!(t.idle, 1020);
        assert_eq!(t.steal, 40);
        assert_eq!(t.busy(), 160);
        assert_eq!(parse_proc_stat("cpu 1 2 3\n"), None);
        assert_eq!(parse_proc_stat("nothing"), None);
    }

    #[test]
    fn parses_self_stat_with_spaces_in_the_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime ...
        let s = "42 (a b) c) S 1 42 42 0 -1 4194304 10 0 0 0 7 3 20 5 20 0 1 0";
        assert_eq!(parse_self_stat(s), Some(7 + 3 + 20 + 5));
        assert_eq!(parse_self_stat("42 (x) S 1"), None);
        let real = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(parse_self_stat(&real).is_some());
    }

    #[test]
    fn usage_counts_what_others_used() {
        let t0 = Instant::now();
        let a = Snapshot {
            at: t0,
            cpu: Some(CpuTimes {
                total: 1000,
                idle: 800,
                steal: 0,
            }),
            own: Some(50),
        };
        // 2 s later on 2 cores: 400 ticks passed, 300 busy of which 100 were ours, 20 stolen.
        let b = Snapshot {
            at: t0 + Duration::from_secs(2),
            cpu: Some(CpuTimes {
                total: 1400,
                idle: 880,
                steal: 20,
            }),
            own: Some(150),
        };
        let u = Usage::between(&a, &b, 100.0).unwrap();
        assert_eq!(u.steal_pct, 5.0);
        assert_eq!(u.others_cores, 1.0);
        assert_eq!(
            u.busy_reason().as_deref(),
            Some("other processes used 1.00 cores")
        );
        let quiet = Usage {
            steal_pct: 0.5,
            others_cores: 0.05,
        };
        assert_eq!(quiet.busy_reason(), None);
        let stolen = Usage {
            steal_pct: 12.0,
            others_cores: 0.0,
        };
        assert_eq!(stolen.busy_reason().as_deref(), Some("12.0% CPU steal"));
    }

    #[test]
    fn busy_by_the_one_minute_load() {
        let m = |l: f64| MachineState {
            load_average: format!("{l} 0 0"),
            load1: Some(l),
            usage: None,
        };
        assert!(!m(0.3).is_busy());
        assert!(!m(1.0).is_busy());
        assert!(m(1.01).is_busy());
        assert!(!MachineState::default().is_busy());
    }
}
