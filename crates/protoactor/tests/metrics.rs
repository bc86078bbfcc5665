//! Metrics (feature `metrics`): spawns, restarts, failures, dead letters, messages and
//! mailbox length are recorded on the configured OpenTelemetry meter.
#![cfg(feature = "metrics")]

mod common;

use common::WAIT;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use protoactor::prelude::*;
use protoactor::Config;

fn counter_total(exporter: &InMemoryMetricExporter, name: &str) -> Option<u64> {
    let mut total = None;
    for rm in exporter.get_finished_metrics().unwrap() {
        for sm in rm.scope_metrics() {
            for m in sm.metrics() {
                if m.name() != name {
                    continue;
                }
                match m.data() {
                    AggregatedMetrics::U64(MetricData::Sum(s)) => {
                        // cumulative temporality: the last export holds the total
                        total = Some(s.data_points().map(|p| p.value()).sum());
                    }
                    AggregatedMetrics::U64(MetricData::Histogram(h)) => {
                        total = Some(h.data_points().map(|p| p.count()).sum());
                    }
                    _ => {}
                }
            }
        }
    }
    total
}

#[test]
fn instruments_count_what_happens() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let system = ActorSystem::with_config(Config::default().with_meter(provider.meter("test")));

    let pid = system.root().spawn(&Props::from_func(|ctx| {
        if ctx.message_as::<&str>() == Some(&"boom") {
            panic!("boom");
        }
        if ctx.message().is::<u32>() {
            ctx.respond(1u32);
        }
    }));
    for _ in 0..5 {
        system
            .root()
            .request_future(&pid, 0u32, WAIT)
            .wait()
            .unwrap();
    }
    system.root().send(&pid, "boom");
    system
        .root()
        .request_future(&pid, 0u32, WAIT)
        .wait()
        .unwrap();
    system.root().stop_future(&pid).wait().unwrap();
    system.root().send(&pid, 0u32);
    // the dead letter is counted when the dead-letter process handles it: wait for it
    let dead = system.root().request_future(&pid, 0u32, WAIT).result();
    assert!(dead.is_err());

    provider.force_flush().unwrap();
    assert!(counter_total(&exporter, "protoactor_actor_spawn_count").unwrap() >= 1);
    assert_eq!(
        counter_total(&exporter, "protoactor_actor_failure_count"),
        Some(1)
    );
    assert_eq!(
        counter_total(&exporter, "protoactor_actor_restarted_count"),
        Some(1)
    );
    assert!(counter_total(&exporter, "protoactor_deadletter_count").unwrap() >= 2);
    // 5 + 1 requests, "boom" and Started at least
    assert!(counter_total(&exporter, "protoactor_actor_messagereceive_count").unwrap() >= 7);
    assert!(counter_total(&exporter, "protoactor_actor_mailbox_length").unwrap() >= 1);
}
