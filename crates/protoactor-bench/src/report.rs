//! Collects samples and renders them: a markdown table for people, JSON for tracking.

use std::collections::HashMap;

use serde::Serialize;

use crate::common::Metric;
use crate::machine::{MachineState, Usage};
use crate::workloads::{Better, Workload};

/// What one child run produced.
pub enum Sample {
    /// The metrics and the peak RSS (KiB).
    Ok {
        /// The measured values.
        metrics: Vec<Metric>,
        /// Peak resident set of the process.
        rss_kb: u64,
        /// What the child said about the run besides its metrics (`NOTE` lines), shown on
        /// the round's progress line (e.g. which member hosted the pubsub topic).
        notes: Vec<String>,
    },
    /// Why the run failed.
    Failed(String),
}

#[derive(Default)]
struct Cell {
    /// metric → (round, value) of each successful run, and the unit.
    values: HashMap<String, (Vec<(usize, f64)>, String)>,
    rss_kb: Vec<u64>,
    failures: Vec<String>,
    /// Why there are no runs at all (not built, skipped).
    absent: Option<String>,
}

/// All samples of a benchmark run.
#[derive(Default)]
pub struct Report {
    /// (workload, implementation) → samples; `order` keeps the implementations' order.
    cells: HashMap<(String, String), Cell>,
    order: HashMap<String, Vec<String>>,
    /// The machine when the run started and when it ended.
    machine: (MachineState, MachineState),
    /// Why every row of this run is marked busy (the load at its start), if it is.
    busy_run: Option<String>,
    /// The machine's use while each workload ran.
    usage: HashMap<String, Usage>,
    /// The rows of an earlier run to compare with (`--compare`).
    previous: Vec<JsonRow>,
}

/// A row that moved more than this fraction since the previous run is marked.
pub const MOVED: f64 = 0.25;

/// One row of the JSON output.
#[derive(Serialize, serde::Deserialize, Clone, Default)]
struct JsonRow {
    workload: String,
    implementation: String,
    value: Option<f64>,
    #[serde(default)]
    unit: String,
    /// Median of the per-round ratios (each round runs every implementation back to back;
    /// a round's ratio compares the values of that round).
    ratio_vs_go: Option<f64>,
    #[serde(default)]
    ratio_min: Option<f64>,
    #[serde(default)]
    ratio_max: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    #[serde(default)]
    rounds: usize,
    peak_rss_kb: Option<u64>,
    #[serde(default)]
    status: String,
    /// How much the row moved since the previous run (ratio for the non-Go rows that have
    /// one, value otherwise), when that is more than [`MOVED`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    moved_vs_previous: Option<String>,
    /// Why this row was measured on a busy machine (see `machine`), if it was: such a row
    /// is not a quiet measurement and does not belong in the published table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    busy: Option<String>,
}

/// The JSON file: the machine at the start and the end, and the rows.
#[derive(Serialize, serde::Deserialize)]
struct JsonRun {
    load_average_start: String,
    load_average_end: String,
    /// The load average and one second of CPU steal and other processes' CPU use.
    #[serde(default)]
    machine_start: MachineState,
    #[serde(default)]
    machine_end: MachineState,
    /// Set when the run started on a busy machine (`--allow-busy`): every row is marked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    busy: Option<String>,
    /// Steal and other processes' CPU use while each workload ran.
    #[serde(default)]
    workload_usage: std::collections::BTreeMap<String, Usage>,
    rows: Vec<JsonRow>,
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

fn median_u64(v: &[u64]) -> Option<u64> {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.get(s.len().wrapping_sub(1) / 2).copied()
}

/// A value with a unit, readably.
fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "msg/s" | "events/s" | "req/s" if v >= 1e6 => format!("{:.2} M", v / 1e6),
        "msg/s" | "events/s" | "req/s" if v >= 1e3 => format!("{:.1} k", v / 1e3),
        "msg/s" | "events/s" | "req/s" => format!("{v:.0}"),
        "B" => format!("{v:.0}"),
        _ if v >= 100.0 => format!("{v:.0}"),
        _ => format!("{v:.2}"),
    }
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the machine at the start (`end` false) or the end of the run. A busy start
    /// marks every row.
    pub fn machine(&mut self, end: bool, state: MachineState) {
        if end {
            self.machine.1 = state;
        } else {
            self.busy_run = state
                .is_busy()
                .then(|| format!("load average {} at the start", state.load_average));
            self.machine.0 = state;
        }
    }

    /// Records the machine's use while `workload` ran; a busy one marks its rows.
    pub fn workload_usage(&mut self, workload: &str, usage: Usage) {
        self.usage.insert(workload.to_string(), usage);
    }

    /// Why the rows of `workload` are not quiet measurements, if they are not.
    fn busy(&self, workload: &str) -> Option<String> {
        let during = self
            .usage
            .get(workload)
            .and_then(Usage::busy_reason)
            .map(|r| format!("{r} during the workload"));
        match (&self.busy_run, during) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.clone().or(b),
        }
    }

    /// Reads an earlier run's JSON (this format, or the plain list of rows of older
    /// versions) to mark the rows that moved more than [`MOVED`] since.
    pub fn compare_with(&mut self, json: &str) -> Result<(), String> {
        self.previous = match serde_json::from_str::<JsonRun>(json) {
            Ok(run) => run.rows,
            Err(_) => serde_json::from_str::<Vec<JsonRow>>(json)
                .map_err(|e| format!("not a protoactor-bench JSON: {e}"))?,
        };
        Ok(())
    }

    fn moved(&self, row: &JsonRow) -> Option<String> {
        let old = self
            .previous
            .iter()
            .find(|p| p.workload == row.workload && p.implementation == row.implementation)?;
        let by_ratio = row.implementation != "protoactor-go"
            && row.ratio_vs_go.is_some()
            && old.ratio_vs_go.is_some();
        let (new, was, fmt): (f64, f64, fn(f64, &str) -> String) = if by_ratio {
            (row.ratio_vs_go?, old.ratio_vs_go?, |v, _| {
                format!("{v:.2}×")
            })
        } else {
            (row.value?, old.value?, fmt_value)
        };
        if was <= 0.0 || (new / was - 1.0).abs() <= MOVED {
            return None;
        }
        Some(format!(
            "{} → {} ({:+.0}%)",
            fmt(was, &row.unit),
            fmt(new, &row.unit),
            (new / was - 1.0) * 100.0
        ))
    }

    fn cell(&mut self, w: &Workload, imp: &str) -> &mut Cell {
        let order = self.order.entry(w.name.to_string()).or_default();
        if !order.iter().any(|i| i == imp) {
            order.push(imp.to_string());
        }
        self.cells
            .entry((w.name.to_string(), imp.to_string()))
            .or_default()
    }

    /// Records the sample of `imp` on `w` in round `round`.
    pub fn add(&mut self, w: &Workload, imp: &str, round: usize, s: Sample) {
        let cell = self.cell(w, imp);
        match s {
            Sample::Ok {
                metrics, rss_kb, ..
            } => {
                for m in metrics {
                    let e = cell
                        .values
                        .entry(m.name)
                        .or_insert_with(|| (Vec::new(), m.unit.clone()));
                    e.0.push((round, m.value));
                }
                cell.rss_kb.push(rss_kb);
            }
            Sample::Failed(e) => cell.failures.push(e),
        }
    }

    /// Fixes the table position of `imp` on `w` (rows appear in declaration order).
    pub fn declare(&mut self, w: &Workload, imp: &str) {
        self.cell(w, imp);
    }

    /// Records that `imp` has no runs on `w`, and why (shown instead of numbers).
    pub fn skip(&mut self, w: &Workload, imp: &str, why: &str) {
        self.cell(w, imp).absent = Some(why.to_string());
    }

    /// The number of failed runs.
    pub fn failures(&self) -> usize {
        self.cells.values().map(|c| c.failures.len()).sum()
    }

    fn rows(&self, workloads: &[&Workload]) -> Vec<JsonRow> {
        let mut rows = Vec::new();
        for w in workloads {
            let Some(order) = self.order.get(w.name) else {
                continue;
            };
            for spec in w.metrics {
                let go: HashMap<usize, f64> = self
                    .cells
                    .get(&(w.name.to_string(), "protoactor-go".to_string()))
                    .and_then(|c| c.values.get(spec.name))
                    .map(|(v, _)| v.iter().copied().collect())
                    .unwrap_or_default();
                for imp in order {
                    let cell = &self.cells[&(w.name.to_string(), imp.clone())];
                    let vals = cell.values.get(spec.name);
                    let plain: Vec<f64> =
                        vals.map_or(Vec::new(), |(v, _)| v.iter().map(|&(_, x)| x).collect());
                    let value = median(&plain);
                    let unit = vals.map(|(_, u)| u.clone()).unwrap_or_default();
                    // One ratio per round in which both ran, from that round's two values.
                    let ratios: Vec<f64> = vals.map_or(Vec::new(), |(v, _)| {
                        v.iter()
                            .filter_map(|&(round, x)| {
                                let g = *go.get(&round)?;
                                (x > 0.0 && g > 0.0).then(|| match spec.better {
                                    Better::Higher => x / g,
                                    Better::Lower => g / x,
                                })
                            })
                            .collect()
                    });
                    let status = if let Some(why) = &cell.absent {
                        why.clone()
                    } else if !cell.failures.is_empty() {
                        format!(
                            "FAILED {} of {}: {}",
                            cell.failures.len(),
                            cell.failures.len() + cell.rss_kb.len(),
                            cell.failures[0]
                        )
                    } else if value.is_none() {
                        // A metric only some implementations report (request-blocking).
                        continue;
                    } else {
                        "ok".to_string()
                    };
                    let mut row = JsonRow {
                        workload: spec.name.to_string(),
                        implementation: imp.clone(),
                        value,
                        unit,
                        ratio_vs_go: median(&ratios),
                        ratio_min: ratios.iter().copied().reduce(f64::min),
                        ratio_max: ratios.iter().copied().reduce(f64::max),
                        min: plain.iter().copied().reduce(f64::min),
                        max: plain.iter().copied().reduce(f64::max),
                        rounds: plain.len(),
                        peak_rss_kb: median_u64(&cell.rss_kb),
                        status,
                        moved_vs_previous: None,
                        busy: self.busy(w.name),
                    };
                    row.moved_vs_previous = self.moved(&row);
                    rows.push(row);
                }
            }
        }
        rows
    }

    /// The markdown table.
    pub fn table(&self, workloads: &[&Workload]) -> String {
        let mut s = format!(
            "machine at the start: {}\nmachine at the end: {}\n",
            self.machine.0, self.machine.1
        );
        let busy: Vec<String> = workloads
            .iter()
            .filter_map(|w| Some(format!("- {}: {}", w.name, self.busy(w.name)?)))
            .collect();
        if busy.is_empty() {
            s.push_str("no row measured on a busy machine\n\n");
        } else {
            s.push_str("rows marked (busy), measured on a busy machine:\n");
            s.push_str(&busy.join("\n"));
            s.push_str("\n\n");
        }
        let compared = !self.previous.is_empty();
        s.push_str(
            "| workload | implementation | median | min – max | unit | peak RSS (MiB) \
             | vs protoactor-go: median (min – max) of the per-round ratios |",
        );
        s.push_str(if compared {
            " moved > 25% since the previous run |\n|---|---|---:|---:|---|---:|---:|---|\n"
        } else {
            "\n|---|---|---:|---:|---|---:|---:|\n"
        });
        for r in self.rows(workloads) {
            let (median, range) = match r.value {
                Some(v) => (
                    fmt_value(v, &r.unit),
                    format!(
                        "{} – {}",
                        fmt_value(r.min.unwrap_or(v), &r.unit),
                        fmt_value(r.max.unwrap_or(v), &r.unit)
                    ),
                ),
                None => (r.status.clone(), String::new()),
            };
            let rss = r
                .peak_rss_kb
                .map(|k| format!("{:.0}", k as f64 / 1024.0))
                .unwrap_or_default();
            let ratio = match (r.ratio_vs_go, r.ratio_min, r.ratio_max) {
                (Some(m), Some(lo), Some(hi)) if r.rounds > 1 => {
                    format!("{m:.2}× ({lo:.2} – {hi:.2})")
                }
                (Some(m), _, _) => format!("{m:.2}×"),
                _ => String::new(),
            };
            let mut note = if r.value.is_some() && r.status != "ok" {
                format!(" ({})", r.status)
            } else {
                String::new()
            };
            if r.busy.is_some() {
                note.push_str(" (busy)");
            }
            s.push_str(&format!(
                "| {} | {}{} | {} | {} | {} | {} | {} |",
                r.workload, r.implementation, note, median, range, r.unit, rss, ratio
            ));
            if compared {
                s.push_str(&format!(
                    " {} |",
                    r.moved_vs_previous.as_deref().unwrap_or_default()
                ));
            }
            s.push('\n');
        }
        s
    }

    /// The run as JSON: the machine at the start and the end, and the rows.
    pub fn json(&self, workloads: &[&Workload]) -> String {
        let run = JsonRun {
            load_average_start: self.machine.0.load_average.clone(),
            load_average_end: self.machine.1.load_average.clone(),
            machine_start: self.machine.0.clone(),
            machine_end: self.machine.1.clone(),
            busy: self.busy_run.clone(),
            workload_usage: self.usage.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            rows: self.rows(workloads),
        };
        serde_json::to_string_pretty(&run).unwrap_or_else(|_| "{}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::find;

    fn ok(name: &str, v: f64, unit: &str) -> Sample {
        Sample::Ok {
            metrics: vec![Metric::new(name, v, unit)],
            rss_kb: 1024,
            notes: Vec::new(),
        }
    }

    #[test]
    fn medians_and_ratios() {
        let mut r = Report::new();
        let w = find("skynet").unwrap();
        for (round, v) in [100.0, 300.0, 200.0].into_iter().enumerate() {
            r.add(w, "protoactor-go", round, ok("skynet", v, "ms"));
        }
        r.add(w, "protoactor-rs", 2, ok("skynet", 50.0, "ms"));
        r.add(w, "kameo", 0, Sample::Failed("boom".into()));
        r.skip(w, "actix", "not built yet");
        let rows = r.rows(&[w]);
        assert_eq!(rows[0].value, Some(200.0));
        assert_eq!(rows[0].min, Some(100.0));
        assert_eq!(rows[0].max, Some(300.0));
        // time: lower is better, so the ratio is inverted (above 1 = faster than Go)
        assert_eq!(rows[1].ratio_vs_go, Some(4.0));
        assert!(rows[2].status.starts_with("FAILED 1 of 1"));
        assert_eq!(rows[3].status, "not built yet");
        assert_eq!(r.failures(), 1);
        let t = r.table(&[w]);
        assert!(t.contains("| skynet | protoactor-rs | 50.00 |"), "{t}");
        assert!(t.contains("4.00×"));
        let j: serde_json::Value = serde_json::from_str(&r.json(&[w])).unwrap();
        assert_eq!(j["rows"][1]["implementation"], "protoactor-rs");
        assert_eq!(j["rows"][1]["ratio_vs_go"], 4.0);
    }

    #[test]
    fn throughput_ratio_is_direct() {
        let mut r = Report::new();
        let w = find("in-process").unwrap();
        r.add(w, "protoactor-go", 0, ok("in-process", 2e6, "msg/s"));
        r.add(w, "protoactor-rs", 0, ok("in-process", 3e6, "msg/s"));
        let rows = r.rows(&[w]);
        assert_eq!(rows[1].ratio_vs_go, Some(1.5));
        assert_eq!(fmt_value(3e6, "msg/s"), "3.00 M");
    }

    #[test]
    fn ratios_are_per_round() {
        // Go was slow in round 0 and fast in round 1, and so were we: the per-round ratios
        // are 2.0 both times, though the medians of the values alone would give 1.33.
        let mut r = Report::new();
        let w = find("in-process").unwrap();
        for (round, go, rs) in [(0, 1e6, 2e6), (1, 3e6, 6e6), (2, 2e6, 2e6)] {
            r.add(w, "protoactor-go", round, ok("in-process", go, "msg/s"));
            r.add(w, "protoactor-rs", round, ok("in-process", rs, "msg/s"));
        }
        let rows = r.rows(&[w]);
        assert_eq!(rows[1].ratio_vs_go, Some(2.0));
        assert_eq!(rows[1].ratio_min, Some(1.0));
        assert_eq!(rows[1].ratio_max, Some(2.0));
        assert!(r.table(&[w]).contains("2.00× (1.00 – 2.00)"));
        // A round in which Go failed gives no ratio.
        let mut r = Report::new();
        r.add(w, "protoactor-go", 0, Sample::Failed("boom".into()));
        r.add(w, "protoactor-go", 1, ok("in-process", 1e6, "msg/s"));
        r.add(w, "protoactor-rs", 0, ok("in-process", 9e6, "msg/s"));
        r.add(w, "protoactor-rs", 1, ok("in-process", 3e6, "msg/s"));
        assert_eq!(r.rows(&[w])[1].ratio_vs_go, Some(3.0));
    }

    #[test]
    fn rows_that_moved_more_than_a_quarter_are_marked() {
        let w = find("in-process").unwrap();
        let mut old = Report::new();
        old.add(w, "protoactor-go", 0, ok("in-process", 2e6, "msg/s"));
        old.add(w, "protoactor-rs", 0, ok("in-process", 4e6, "msg/s"));
        old.add(w, "kameo", 0, ok("in-process", 1e6, "msg/s"));
        let mut new = Report::new();
        new.compare_with(&old.json(&[w])).unwrap();
        // Go: +20% (not marked); protoactor-rs: ratio 2.0 → 1.5, −25% (not marked);
        // kameo: 0.5 → 1.0, +100% (marked).
        new.add(w, "protoactor-go", 0, ok("in-process", 2.4e6, "msg/s"));
        new.add(w, "protoactor-rs", 0, ok("in-process", 3.6e6, "msg/s"));
        new.add(w, "kameo", 0, ok("in-process", 2.4e6, "msg/s"));
        new.machine(
            false,
            MachineState {
                load_average: "0.50 2.00 3.00".into(),
                load1: Some(0.5),
                usage: None,
            },
        );
        let rows = new.rows(&[w]);
        assert_eq!(rows[0].moved_vs_previous, None);
        assert_eq!(rows[1].moved_vs_previous, None);
        assert_eq!(
            rows[2].moved_vs_previous.as_deref(),
            Some("0.50× → 1.00× (+100%)")
        );
        let t = new.table(&[w]);
        assert!(
            t.contains("at the start: load average 0.50 2.00 3.00"),
            "{t}"
        );
        assert!(t.contains("no row measured on a busy machine"), "{t}");
        assert!(rows.iter().all(|r| r.busy.is_none()));
        assert!(t.contains("| 0.50× → 1.00× (+100%) |"), "{t}");
        // The older plain-list format is read too.
        let list = serde_json::to_string(&old.rows(&[w])).unwrap();
        assert!(Report::new().compare_with(&list).is_ok());
        assert!(Report::new().compare_with("{").is_err());
    }

    #[test]
    fn rows_of_a_busy_run_or_workload_are_marked() {
        let (w, s) = (find("in-process").unwrap(), find("skynet").unwrap());
        let at = |l: f64| MachineState {
            load_average: format!("{l:.2} 2.00 1.00"),
            load1: Some(l),
            usage: None,
        };
        let mut r = Report::new();
        r.machine(false, at(0.2));
        r.add(w, "protoactor-rs", 0, ok("in-process", 1e6, "msg/s"));
        r.add(s, "protoactor-rs", 0, ok("skynet", 5.0, "ms"));
        r.workload_usage(
            "in-process",
            Usage {
                steal_pct: 0.0,
                others_cores: 1.5,
            },
        );
        r.workload_usage(
            "skynet",
            Usage {
                steal_pct: 0.1,
                others_cores: 0.01,
            },
        );
        let rows = r.rows(&[w, s]);
        assert_eq!(
            rows[0].busy.as_deref(),
            Some("other processes used 1.50 cores during the workload")
        );
        assert_eq!(rows[1].busy, None);
        let t = r.table(&[w, s]);
        assert!(t.contains("| in-process | protoactor-rs (busy) |"), "{t}");
        assert!(t.contains("| skynet | protoactor-rs | 5.00 |"), "{t}");
        assert!(
            t.contains("- in-process: other processes used 1.50 cores"),
            "{t}"
        );
        // A busy start marks every row, in the JSON too.
        r.machine(false, at(3.1));
        let rows = r.rows(&[w, s]);
        assert_eq!(
            rows[1].busy.as_deref(),
            Some("load average 3.10 2.00 1.00 at the start")
        );
        let j: serde_json::Value = serde_json::from_str(&r.json(&[w, s])).unwrap();
        assert_eq!(j["busy"], "load average 3.10 2.00 1.00 at the start");
        assert_eq!(
            j["rows"][1]["busy"],
            "load average 3.10 2.00 1.00 at the start"
        );
        assert_eq!(j["machine_start"]["load1"], 3.1);
        assert_eq!(j["workload_usage"]["in-process"]["others_cores"], 1.5);
        // A file of this format can be compared with.
        assert!(Report::new().compare_with(&r.json(&[w, s])).is_ok());
    }
}
