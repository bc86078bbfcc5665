//! The feature `metrics`: grain calls recorded in the actor system's OpenTelemetry meter as
//! the histogram `protocluster_grain_request_duration`, per kind and method.

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use protoactor::prelude::*;
use protoactor::Config;
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{CallOptions, Cluster, ClusterConfig, DistHashIdentityLookup, Kind};
use protoactor_remote::{Remote, RemoteConfig};

#[test]
fn grain_calls_are_recorded_in_the_opentelemetry_meter_per_kind_and_method() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let system = ActorSystem::with_config(Config::default().with_meter(provider.meter("app")));
    let remote = Remote::start(&system, RemoteConfig::local()).unwrap();
    let echo = Props::from_func(|ctx| {
        if let Some(s) = ctx.message_as::<String>() {
            ctx.respond(s.clone());
        }
    });
    let agent = InMemAgent::new();
    let cluster = Cluster::start_member(
        &system,
        &remote,
        ClusterConfig::new(
            "otel",
            TestProvider::new(&agent),
            DistHashIdentityLookup::new(),
        )
        .with_kind(Kind::new("echo", echo)),
    )
    .unwrap();
    for i in 0..5 {
        let r: String = cluster
            .request_blocking_as(
                format!("e{i}"),
                "echo",
                String::from("hi"),
                &CallOptions::default(),
            )
            .unwrap();
        assert_eq!(r, "hi");
    }
    provider.force_flush().unwrap();
    let mut found = None;
    for rm in exporter.get_finished_metrics().unwrap() {
        for sm in rm.scope_metrics() {
            for m in sm.metrics() {
                if m.name() != "protocluster_grain_request_duration" {
                    continue;
                }
                assert_eq!(m.unit(), "s");
                let AggregatedMetrics::F64(MetricData::Histogram(h)) = m.data() else {
                    panic!("not an f64 histogram: {:?}", m.data());
                };
                for p in h.data_points() {
                    let attrs: Vec<(String, String)> = p
                        .attributes()
                        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                        .collect();
                    found = Some((p.count(), attrs));
                }
            }
        }
    }
    let (count, mut attrs) = found.expect("the histogram was exported");
    attrs.sort();
    assert_eq!(count, 5);
    assert_eq!(
        attrs,
        [
            ("kind".to_string(), "echo".to_string()),
            ("method".to_string(), "String".to_string())
        ]
    );
    cluster.shutdown_blocking(true);
    system.shutdown();
}
