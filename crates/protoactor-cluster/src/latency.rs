//! Grain request latency per kind and method: fixed-bucket histograms of atomic counters,
//! recorded by the calls while something reads them (the management API turns recording
//! on), rendered as Prometheus histograms and as JSON for the dashboard. With the feature
//! `metrics` and a meter in the actor system's config, every call is also recorded in the
//! OpenTelemetry histogram `protocluster_grain_request_duration` (seconds, attributes
//! `kind` and `method`), for the application's own exporter.
//!
//! Off, a call pays one atomic load. On, it reads the clock twice, finds its histogram (a
//! map lookup by kind, then a short scan by method name) and adds to three atomic counters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::RwLock;

/// The upper bounds of the buckets, in seconds (Prometheus' `le`), as the OpenTelemetry
/// SDK's default explicit buckets but starting at 0.5 ms (grain calls are fast).
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One kind's and method's calls.
#[derive(Default)]
pub struct Histogram {
    /// Calls per bucket (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    errors: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A histogram's numbers at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The grain kind.
    pub kind: String,
    /// The method (a typed grain's method, or the request message's type name).
    pub method: &'static str,
    /// Calls per bucket of [`BUCKETS`], cumulative (Prometheus' `_bucket`), then `+Inf`.
    pub cumulative: Vec<u64>,
    /// Calls.
    pub count: u64,
    /// Calls that failed.
    pub errors: u64,
    /// The calls' total time, in seconds.
    pub sum_seconds: f64,
}

impl Snapshot {
    /// The time under which `q` (0..=1) of the calls finished: the upper bound of the bucket
    /// holding that call (`None` without calls, or when it is in `+Inf`).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q * self.count as f64).ceil().max(1.0) as u64;
        let i = self.cumulative.iter().position(|&c| c >= rank)?;
        BUCKETS.get(i).copied()
    }
}

impl Histogram {
    fn record(&self, took: Duration, ok: bool) {
        let secs = took.as_secs_f64();
        let i = BUCKETS.partition_point(|&b| b < secs);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

type Methods = RwLock<Vec<(&'static str, Arc<Histogram>)>>;

/// The histograms of one cluster node.
#[derive(Default)]
pub struct RequestLatencies {
    readers: AtomicUsize,
    kinds: DashMap<String, Methods>,
    #[cfg(feature = "metrics")]
    otel: Option<opentelemetry::metrics::Histogram<f64>>,
}

impl RequestLatencies {
    /// The histograms of a node on `system`: with the feature `metrics` and a meter in its
    /// config, also recorded in OpenTelemetry (always on then).
    pub fn new(system: &protoactor::ActorSystem) -> Self {
        #[cfg(feature = "metrics")]
        {
            let otel = system.config().meter.as_ref().map(|m| {
                m.f64_histogram("protocluster_grain_request_duration")
                    .with_unit("s")
                    .with_description("Grain calls per kind and method, retries included")
                    .with_boundaries(BUCKETS.to_vec())
                    .build()
            });
            RequestLatencies {
                otel,
                ..Default::default()
            }
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = system;
            RequestLatencies::default()
        }
    }

    /// True while something reads the histograms (calls record only then).
    #[inline]
    pub fn enabled(&self) -> bool {
        #[cfg(feature = "metrics")]
        if self.otel.is_some() {
            return true;
        }
        self.readers.load(Ordering::Relaxed) > 0
    }

    /// Starts recording (for one more reader); [`RequestLatencies::stop_recording`] undoes it.
    pub fn start_recording(&self) {
        self.readers.fetch_add(1, Ordering::Relaxed);
    }

    /// One reader less; recording stops with the last.
    pub fn stop_recording(&self) {
        let _ = self
            .readers
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Records one call of `method` on a grain of `kind` that took `took`.
    pub fn record(&self, kind: &str, method: &'static str, took: Duration, ok: bool) {
        #[cfg(feature = "metrics")]
        if let Some(h) = &self.otel {
            h.record(
                took.as_secs_f64(),
                &[
                    opentelemetry::KeyValue::new("kind", kind.to_string()),
                    opentelemetry::KeyValue::new("method", method),
                ],
            );
        }
        if let Some(methods) = self.kinds.get(kind) {
            let found = methods
                .read()
                .iter()
                .find(|(m, _)| *m == method)
                .map(|(_, h)| h.clone());
            if let Some(h) = found {
                return h.record(took, ok);
            }
        }
        let methods = self.kinds.entry(kind.to_string()).or_default();
        let mut w = methods.write();
        let h = match w.iter().find(|(m, _)| *m == method) {
            Some((_, h)) => h.clone(),
            None => {
                let h = Arc::new(Histogram::default());
                w.push((method, h.clone()));
                h
            }
        };
        drop(w);
        h.record(took, ok);
    }

    /// Every histogram, by kind then method.
    pub fn snapshot(&self) -> Vec<Snapshot> {
        let mut out = Vec::new();
        for entry in self.kinds.iter() {
            for (method, h) in entry.value().read().iter() {
                let mut total = 0;
                let cumulative = h
                    .buckets
                    .iter()
                    .map(|b| {
                        total += b.load(Ordering::Relaxed);
                        total
                    })
                    .collect();
                out.push(Snapshot {
                    kind: entry.key().clone(),
                    method,
                    cumulative,
                    count: h.count.load(Ordering::Relaxed),
                    errors: h.errors.load(Ordering::Relaxed),
                    sum_seconds: h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
                });
            }
        }
        out.sort_by(|a, b| (&a.kind, a.method).cmp(&(&b.kind, b.method)));
        out
    }
}

/// The last segment of a Rust type name (`bank::Deposit` → `Deposit`), generic arguments
/// kept: a short method label for a request without a method name.
pub fn short_type_name(name: &'static str) -> &'static str {
    let head = name.split('<').next().unwrap_or(name);
    match head.rfind("::") {
        Some(i) => &name[i + 2..],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_land_in_their_buckets_per_kind_and_method() {
        let l = RequestLatencies::default();
        assert!(!l.enabled());
        l.start_recording();
        assert!(l.enabled());
        l.record("Account", "Deposit", Duration::from_micros(300), true);
        l.record("Account", "Deposit", Duration::from_millis(20), false);
        l.record("Account", "Balance", Duration::from_secs(30), true);
        let s = l.snapshot();
        assert_eq!(s.len(), 2);
        let (balance, deposit) = (&s[0], &s[1]);
        assert_eq!((balance.method, deposit.method), ("Balance", "Deposit"));
        assert_eq!((deposit.count, deposit.errors), (2, 1));
        // 0.3 ms in the first bucket, 20 ms in le=0.025 (the sixth): cumulative counts.
        assert_eq!(deposit.cumulative[0], 1);
        assert_eq!(deposit.cumulative[4], 1);
        assert_eq!(deposit.cumulative[5], 2);
        assert_eq!(*deposit.cumulative.last().unwrap(), 2);
        assert!((deposit.sum_seconds - 0.0203).abs() < 1e-9);
        assert_eq!(deposit.quantile(0.5), Some(0.0005));
        assert_eq!(deposit.quantile(0.99), Some(0.025));
        // Beyond the last bound: only +Inf counts it.
        assert_eq!(balance.cumulative[BUCKETS.len() - 1], 0);
        assert_eq!(balance.cumulative[BUCKETS.len()], 1);
        assert_eq!(balance.quantile(0.5), None);
        l.stop_recording();
        l.stop_recording();
        assert!(!l.enabled());
    }

    #[test]
    fn short_names_drop_the_path() {
        assert_eq!(short_type_name("bank::Deposit"), "Deposit");
        assert_eq!(short_type_name("u32"), "u32");
        assert_eq!(short_type_name("a::Wrap<b::Inner>"), "Wrap<b::Inner>");
    }
}
