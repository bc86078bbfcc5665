//! Metrics hooks. With the `metrics` feature and a meter in the [`Config`](crate::Config),
//! the system records OpenTelemetry instruments named like protoactor-go's
//! (`protoactor_actor_spawn_count`, …); without them every hook is a no-op.

use crate::config::Config;

#[cfg(feature = "metrics")]
struct Instruments {
    spawns: opentelemetry::metrics::Counter<u64>,
    restarts: opentelemetry::metrics::Counter<u64>,
    failures: opentelemetry::metrics::Counter<u64>,
    dead_letters: opentelemetry::metrics::Counter<u64>,
    messages: opentelemetry::metrics::Counter<u64>,
    mailbox_length: opentelemetry::metrics::Histogram<u64>,
}

pub(crate) struct Metrics {
    #[cfg(feature = "metrics")]
    inner: Option<Instruments>,
}

impl Metrics {
    #[cfg(feature = "metrics")]
    pub(crate) fn new(config: &Config) -> Self {
        let inner = config.meter.as_ref().map(|m| Instruments {
            spawns: m.u64_counter("protoactor_actor_spawn_count").build(),
            restarts: m.u64_counter("protoactor_actor_restarted_count").build(),
            failures: m.u64_counter("protoactor_actor_failure_count").build(),
            dead_letters: m.u64_counter("protoactor_deadletter_count").build(),
            messages: m
                .u64_counter("protoactor_actor_messagereceive_count")
                .build(),
            mailbox_length: m.u64_histogram("protoactor_actor_mailbox_length").build(),
        });
        Metrics { inner }
    }
    #[cfg(not(feature = "metrics"))]
    pub(crate) fn new(_config: &Config) -> Self {
        Metrics {}
    }

    #[inline]
    pub(crate) fn spawn(&self) {
        #[cfg(feature = "metrics")]
        if let Some(i) = &self.inner {
            i.spawns.add(1, &[]);
        }
    }
    #[inline]
    pub(crate) fn restart(&self) {
        #[cfg(feature = "metrics")]
        if let Some(i) = &self.inner {
            i.restarts.add(1, &[]);
        }
    }
    #[inline]
    pub(crate) fn failure(&self) {
        #[cfg(feature = "metrics")]
        if let Some(i) = &self.inner {
            i.failures.add(1, &[]);
        }
    }
    #[inline]
    pub(crate) fn dead_letter(&self) {
        #[cfg(feature = "metrics")]
        if let Some(i) = &self.inner {
            i.dead_letters.add(1, &[]);
        }
    }
    /// A mailbox turn processed `n` messages with `queued` still waiting.
    #[inline]
    #[allow(unused_variables)]
    pub(crate) fn mailbox_turn(&self, n: u64, queued: u64) {
        #[cfg(feature = "metrics")]
        if let Some(i) = &self.inner {
            if n > 0 {
                i.messages.add(n, &[]);
            }
            i.mailbox_length.record(queued, &[]);
        }
    }
    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        #[cfg(feature = "metrics")]
        {
            self.inner.is_some()
        }
        #[cfg(not(feature = "metrics"))]
        {
            false
        }
    }
}
