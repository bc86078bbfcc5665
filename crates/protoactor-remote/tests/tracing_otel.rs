//! OpenTelemetry tracing across two Rust nodes: the span context travels in the message
//! headers over the wire (run with `--features tracing-otel`).
#![cfg(feature = "tracing-otel")]

mod common;

use std::time::Instant;

use common::messages::{Echo, Response};
use common::*;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use protoactor::prelude::*;
use protoactor::tracing_otel::OtelTracing;
use protoactor_remote::PidExt;
use protoactor_testkit::process::ChildProcess;

/// Waits until a span named `name` of actor `actor` (its id) has been exported.
fn span_of(exporter: &InMemorySpanExporter, name: &str, actor: &str) -> SpanData {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .find(|s| {
                s.name == name
                    && s.attributes.iter().any(|kv| {
                        kv.key.as_str() == "actor.pid" && kv.value.to_string().ends_with(actor)
                    })
            });
        if let Some(s) = found {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no span {name:?} of {actor} in time"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Waits until a span named `name` has been exported.
fn span_named(exporter: &InMemorySpanExporter, name: &str) -> SpanData {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .find(|s| s.name == name);
        if let Some(s) = found {
            return s;
        }
        assert!(Instant::now() < deadline, "no span {name:?} in time");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A caller's span on node 1 -> `request_future` to a relay on node 2 -> the relay sends
/// to an actor back on node 1 and responds: one trace id on both nodes, each receive span
/// the child of the span that sent the message, and the response carries the relay's span.
#[test]
fn a_trace_crosses_nodes_and_comes_back() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    // each node has its own middleware (as two processes would); one exporter sees both
    let (t1, t2) = (
        OtelTracing::with_tracer_provider(&provider),
        OtelTracing::with_tracer_provider(&provider),
    );
    let (s1, r1) = default_node();
    let (s2, r2) = default_node();
    let (p, rx) = probe::<String>();
    s1.root()
        .spawn_named(
            &Props::from_func(move |ctx| {
                if let Some(e) = ctx.message_as::<Echo>() {
                    p.push(e.message.clone());
                }
            })
            .with_propagated(&t1.propagation()),
            "back",
        )
        .unwrap();
    s2.root()
        .spawn_named(
            &Props::from_func(|ctx| {
                if let Some(e) = ctx.message_as::<Echo>() {
                    let back = e.sender.as_ref().expect("a return address").to_pid();
                    ctx.send(
                        &back,
                        Echo {
                            message: "back".into(),
                            sender: None,
                        },
                    );
                    let headers = ctx.header().map(|h| h.to_map()).unwrap_or_default();
                    ctx.respond(Response {
                        some_value: "relayed".into(),
                        from: None,
                        headers,
                        via_json: false,
                    });
                }
            })
            .with_propagated(&t2.propagation()),
            "relay",
        )
        .unwrap();
    let root = s1.root().with_sender_middleware(t1.sender_middleware());
    let relay = Pid::new(r2.address(), "relay");
    let back = Pid::new(r1.address(), "back");
    let tracer = provider.tracer("test");
    let (client_trace, client_span, reply) = tracer.in_span("client", |cx| {
        let reply = root
            .request_future(
                &relay,
                Echo {
                    message: "go".into(),
                    sender: Some(back.to_proto()),
                },
                WAIT,
            )
            .result_as::<Response>()
            .expect("a response");
        let sc = cx.span().span_context().clone();
        (sc.trace_id(), sc.span_id(), reply)
    });
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "back");
    let on_relay = span_of(&exporter, "receive Echo", "relay");
    let on_back = span_of(&exporter, "receive Echo", "back");
    assert_eq!(on_relay.span_context.trace_id(), client_trace);
    let request = span_named(&exporter, "request Echo");
    assert_eq!(request.parent_span_id, client_span);
    assert_eq!(on_relay.parent_span_id, request.span_context.span_id());
    assert!(
        on_relay.parent_span_is_remote,
        "node 2 continued a context from the wire"
    );
    assert_eq!(on_back.span_context.trace_id(), client_trace);
    assert_eq!(on_back.parent_span_id, on_relay.span_context.span_id());
    // the header the relay handled with names its own span (W3C traceparent)
    let traceparent = reply
        .headers
        .get("traceparent")
        .expect("a traceparent header");
    assert!(
        traceparent.contains(&on_relay.span_context.span_id().to_string()),
        "{traceparent}"
    );
    stop(&s1, &r1);
    stop(&s2, &r2);
}

/// Builds and starts `interop/cmd/gotrace` (a protoactor-go node tracing with the
/// OpenTelemetry Go SDK and W3C propagation), or `None` after a loud SKIPPED line when Go
/// is not installed (a failure with `PROTOACTOR_INTEROP=required`, as CI runs).
fn start_gotrace() -> Option<ChildProcess> {
    let bin = protoactor_testkit::go::go_program("gotrace", "Go tracing test")?;
    Some(ChildProcess::spawn_all_lines(
        "gotrace",
        std::process::Command::new(bin),
    ))
}

/// Across languages: a trace started in Go (OpenTelemetry Go SDK, W3C `traceparent` in
/// protoactor-go's message header) reaches a traced Rust actor, which calls back into a Go
/// actor: one trace id on both sides, the Rust span the child of Go's client span, Go's
/// receive span the child of the Rust span.
#[test]
fn a_trace_crosses_from_go_to_rust_and_back() {
    let Some(mut go) = start_gotrace() else {
        return;
    };
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracing = OtelTracing::with_tracer_provider(&provider);
    let (system, remote) = node(
        protoactor_remote::RemoteConfig::local()
            .with_serialization(serialization())
            .with_wire_variant(protoactor_remote::WireVariant::Legacy2024),
    );
    system
        .root()
        .spawn_named(
            &Props::from_func(|ctx| {
                if let Some(e) = ctx.message_as::<Echo>() {
                    let back = e.sender.as_ref().expect("a return address").to_pid();
                    ctx.send(
                        &back,
                        Echo {
                            message: "back".into(),
                            sender: None,
                        },
                    );
                    ctx.respond(Response {
                        some_value: "relayed".into(),
                        ..Default::default()
                    });
                }
            })
            .with_propagated(&tracing.propagation()),
            "relay",
        )
        .unwrap();

    let ready = go.next_line("READY", WAIT);
    assert!(ready.starts_with("READY "), "{ready}");
    go.send_line(&format!("call {} relay", remote.address()));
    // SPAN <name> <trace id> <span id> <parent span id>
    let mut go_spans = Vec::new();
    loop {
        let line = go.next_line("SPAN or DONE", WAIT);
        assert!(!line.starts_with("ERROR"), "{line}");
        if line == "DONE" {
            break;
        }
        if let Some(rest) = line.strip_prefix("SPAN ") {
            let f: Vec<String> = rest.split(' ').map(str::to_owned).collect();
            go_spans.push(f);
        }
    }
    let go_span = |name: &str| {
        go_spans
            .iter()
            .find(|f| f[0] == name)
            .unwrap_or_else(|| panic!("no Go span {name}: {go_spans:?}"))
            .clone()
    };
    let (client, go_back) = (go_span("go_client"), go_span("go_receive_Echo"));
    let relay = span_of(&exporter, "receive Echo", "relay");
    let trace = relay.span_context.trace_id().to_string();
    assert_eq!(client[1], trace, "Rust continues Go's trace");
    assert_eq!(
        relay.parent_span_id.to_string(),
        client[2],
        "Go's client span is the parent"
    );
    assert!(relay.parent_span_is_remote);
    assert_eq!(go_back[1], trace, "Go continues the same trace");
    assert_eq!(
        go_back[3],
        relay.span_context.span_id().to_string(),
        "the Rust span is Go's parent"
    );
    go.kill();
    stop(&system, &remote);
}
