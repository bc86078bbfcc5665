//! Actor system settings.

use std::time::Duration;

/// Actor system settings. `Config::default()` matches protoactor-go's defaults.
#[derive(Clone, Debug)]
pub struct Config {
    /// Dead letters logged per interval before throttling (default 3).
    pub dead_letter_throttle_count: u32,
    /// The throttling interval (default 1 s).
    pub dead_letter_throttle_interval: Duration,
    /// Log dead letters of requests (messages with a sender) too (default true).
    pub dead_letter_request_logging: bool,
    /// Log every supervision decision at error level (default false).
    pub developer_supervision_logging: bool,
    /// Worker threads of the system's own runtime (default: the number of cores).
    pub worker_threads: Option<usize>,
    /// Run on this tokio runtime instead of creating one.
    pub runtime: Option<tokio::runtime::Handle>,
    /// Where metrics go (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub meter: Option<opentelemetry::metrics::Meter>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dead_letter_throttle_count: 3,
            dead_letter_throttle_interval: Duration::from_secs(1),
            dead_letter_request_logging: true,
            developer_supervision_logging: false,
            worker_threads: None,
            runtime: None,
            #[cfg(feature = "metrics")]
            meter: None,
        }
    }
}

impl Config {
    /// Sets dead-letter throttling.
    pub fn with_dead_letter_throttle(mut self, count: u32, interval: Duration) -> Self {
        self.dead_letter_throttle_count = count;
        self.dead_letter_throttle_interval = interval;
        self
    }
    /// Sets whether dead letters of requests are logged.
    pub fn with_dead_letter_request_logging(mut self, on: bool) -> Self {
        self.dead_letter_request_logging = on;
        self
    }
    /// Sets developer supervision logging.
    pub fn with_developer_supervision_logging(mut self, on: bool) -> Self {
        self.developer_supervision_logging = on;
        self
    }
    /// Sets the number of worker threads of the system's runtime.
    pub fn with_worker_threads(mut self, n: usize) -> Self {
        self.worker_threads = Some(n.max(1));
        self
    }
    /// Runs on an existing tokio runtime.
    pub fn with_runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = Some(handle);
        self
    }
    /// Records metrics with this OpenTelemetry meter.
    #[cfg(feature = "metrics")]
    pub fn with_meter(mut self, meter: opentelemetry::metrics::Meter) -> Self {
        self.meter = Some(meter);
        self
    }
}
