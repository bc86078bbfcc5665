//! Collects samples and renders them: a markdown table for people, JSON for tracking.

use std::collections::HashMap;

use serde::Serialize;

use crate::common::Metric;
use crate::workloads::{Better, Workload};

/// What one child run produced.
pub enum Sample {
    /// The metrics and the peak RSS (KiB).
    Ok {
        /// The measured values.
        metrics: Vec<Metric>,
        /// Peak resident set of the process.
        rss_kb: u64,
    },
    /// Why the run failed.
    Failed(String),
}

#[derive(Default)]
struct Cell {
    values: HashMap<String, (Vec<f64>, String)>,
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
}

/// One row of the JSON output.
#[derive(Serialize)]
struct JsonRow {
    workload: String,
    implementation: String,
    value: Option<f64>,
    unit: String,
    ratio_vs_go: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    rounds: usize,
    peak_rss_kb: Option<u64>,
    status: String,
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
        "msg/s" | "events/s" if v >= 1e6 => format!("{:.2} M", v / 1e6),
        "msg/s" | "events/s" if v >= 1e3 => format!("{:.1} k", v / 1e3),
        "msg/s" | "events/s" => format!("{v:.0}"),
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

    fn cell(&mut self, w: &Workload, imp: &str) -> &mut Cell {
        let order = self.order.entry(w.name.to_string()).or_default();
        if !order.iter().any(|i| i == imp) {
            order.push(imp.to_string());
        }
        self.cells
            .entry((w.name.to_string(), imp.to_string()))
            .or_default()
    }

    /// Records a sample of `imp` on `w`.
    pub fn add(&mut self, w: &Workload, imp: &str, s: Sample) {
        let cell = self.cell(w, imp);
        match s {
            Sample::Ok { metrics, rss_kb } => {
                for m in metrics {
                    let e = cell
                        .values
                        .entry(m.name)
                        .or_insert_with(|| (Vec::new(), m.unit.clone()));
                    e.0.push(m.value);
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
                let go = self
                    .cells
                    .get(&(w.name.to_string(), "protoactor-go".to_string()))
                    .and_then(|c| c.values.get(spec.name))
                    .and_then(|(v, _)| median(v));
                for imp in order {
                    let cell = &self.cells[&(w.name.to_string(), imp.clone())];
                    let vals = cell.values.get(spec.name);
                    let value = vals.and_then(|(v, _)| median(v));
                    let unit = vals.map(|(_, u)| u.clone()).unwrap_or_default();
                    let ratio = match (value, go) {
                        (Some(v), Some(g)) if v > 0.0 && g > 0.0 => Some(match spec.better {
                            Better::Higher => v / g,
                            Better::Lower => g / v,
                        }),
                        _ => None,
                    };
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
                    rows.push(JsonRow {
                        workload: spec.name.to_string(),
                        implementation: imp.clone(),
                        value,
                        unit,
                        ratio_vs_go: ratio,
                        min: vals.and_then(|(v, _)| v.iter().copied().reduce(f64::min)),
                        max: vals.and_then(|(v, _)| v.iter().copied().reduce(f64::max)),
                        rounds: vals.map_or(0, |(v, _)| v.len()),
                        peak_rss_kb: median_u64(&cell.rss_kb),
                        status,
                    });
                }
            }
        }
        rows
    }

    /// The markdown table.
    pub fn table(&self, workloads: &[&Workload]) -> String {
        let mut s = String::from(
            "| workload | implementation | median | min – max | unit | peak RSS (MiB) | vs protoactor-go |\n\
             |---|---|---:|---:|---|---:|---:|\n",
        );
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
            let ratio = r
                .ratio_vs_go
                .map(|x| format!("{x:.2}×"))
                .unwrap_or_default();
            let note = if r.value.is_some() && r.status != "ok" {
                format!(" ({})", r.status)
            } else {
                String::new()
            };
            s.push_str(&format!(
                "| {} | {}{} | {} | {} | {} | {} | {} |\n",
                r.workload, r.implementation, note, median, range, r.unit, rss, ratio
            ));
        }
        s
    }

    /// The rows as a JSON list.
    pub fn json(&self, workloads: &[&Workload]) -> String {
        serde_json::to_string_pretty(&self.rows(workloads)).unwrap_or_else(|_| "[]".into())
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
        }
    }

    #[test]
    fn medians_and_ratios() {
        let mut r = Report::new();
        let w = find("skynet").unwrap();
        for v in [100.0, 300.0, 200.0] {
            r.add(w, "protoactor-go", ok("skynet", v, "ms"));
        }
        r.add(w, "protoactor-rs", ok("skynet", 50.0, "ms"));
        r.add(w, "kameo", Sample::Failed("boom".into()));
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
        assert_eq!(j[1]["implementation"], "protoactor-rs");
        assert_eq!(j[1]["ratio_vs_go"], 4.0);
    }

    #[test]
    fn throughput_ratio_is_direct() {
        let mut r = Report::new();
        let w = find("in-process").unwrap();
        r.add(w, "protoactor-go", ok("in-process", 2e6, "msg/s"));
        r.add(w, "protoactor-rs", ok("in-process", 3e6, "msg/s"));
        let rows = r.rows(&[w]);
        assert_eq!(rows[1].ratio_vs_go, Some(1.5));
        assert_eq!(fmt_value(3e6, "msg/s"), "3.00 M");
    }
}
