//! OpenTelemetry tracing middleware: spans per message, spawn spans and failures, linked
//! through message headers (run with `--features tracing-otel`).
#![cfg(feature = "tracing-otel")]

mod common;

use std::time::{Duration, Instant};

use common::WAIT;
use opentelemetry::trace::{Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use protoactor::prelude::*;
use protoactor::tracing_otel::OtelTracing;

/// A provider exporting into memory, and tracing middleware over it.
fn setup() -> (SdkTracerProvider, InMemorySpanExporter, OtelTracing) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracing = OtelTracing::with_tracer_provider(&provider);
    (provider, exporter, tracing)
}

/// Waits until a span named `name` has been exported (spans export when they end).
fn span(exporter: &InMemorySpanExporter, name: &str) -> SpanData {
    let deadline = Instant::now() + WAIT;
    loop {
        let spans = exporter.get_finished_spans().unwrap();
        if let Some(s) = spans.into_iter().find(|s| s.name == name) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no span named {name:?} within the wait time"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `n` spans named `name` have been exported.
fn spans(exporter: &InMemorySpanExporter, name: &str, n: usize) -> Vec<SpanData> {
    let deadline = Instant::now() + WAIT;
    loop {
        let found: Vec<_> = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|s| s.name == name)
            .collect();
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {n} spans named {name:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn attr(s: &SpanData, key: &str) -> Option<String> {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

struct Ping;
struct Pong;

/// A trace started by a caller's span follows `request_future` into an actor, a forward
/// to a second actor and the response: one trace, each receive span the child of the span
/// that sent the message, the request/response pair in a `request` span.
#[test]
fn a_trace_follows_request_future_and_forward() {
    let (provider, exporter, tracing) = setup();
    let system = ActorSystem::new();
    let root = system
        .root()
        .with_sender_middleware(tracing.sender_middleware());
    let propagated = tracing.propagation();
    let b = root
        .spawn_named(
            &Props::from_func(|ctx| {
                if ctx.message().is::<Ping>() {
                    ctx.respond(Pong);
                }
            })
            .with_propagated(&propagated),
            "b",
        )
        .unwrap();
    let a = root
        .spawn_named(
            &Props::from_func(move |ctx| {
                if ctx.message().is::<Ping>() {
                    ctx.forward(&b);
                }
            })
            .with_propagated(&propagated),
            "a",
        )
        .unwrap();
    let tracer = provider.tracer("test");
    let client_span_id = tracer.in_span("client", |cx| {
        let f = root.request_future(&a, Ping, WAIT);
        f.result_as::<Pong>().expect("a response");
        cx.span().span_context().span_id()
    });
    let client = span(&exporter, "client");
    assert_eq!(client.span_context.span_id(), client_span_id);
    // b's span ends after it responded: wait for both
    let pings = spans(&exporter, "receive Ping", 2);
    let on = |id: &str| {
        pings
            .iter()
            .find(|s| attr(s, "actor.pid").is_some_and(|p| p.ends_with(id)))
            .unwrap_or_else(|| panic!("no receive span of {id}"))
            .clone()
    };
    let (ra, rb) = (on("/a"), on("/b"));
    let trace = client.span_context.trace_id();
    assert_eq!(ra.span_context.trace_id(), trace);
    assert_eq!(rb.span_context.trace_id(), trace);
    // request_future: a `request` span around the pair, ended before the result is read
    let request = span(&exporter, "request Ping");
    assert_eq!(request.span_kind, opentelemetry::trace::SpanKind::Client);
    assert_eq!(request.parent_span_id, client.span_context.span_id());
    assert_eq!(ra.parent_span_id, request.span_context.span_id());
    assert_eq!(
        rb.parent_span_id,
        ra.span_context.span_id(),
        "the forward is a child of a's span"
    );
    assert_eq!(
        attr(&ra, "message.type").as_deref(),
        Some("tracing_otel::Ping")
    );
}

/// A `reenter_after` continuation runs under a `continue` span, the child of the span of
/// the message it continues; what it sends is that span's child.
#[test]
fn a_continuation_resumes_the_message_trace() {
    let (_provider, exporter, tracing) = setup();
    let system = ActorSystem::new();
    let propagated = tracing.propagation();
    let sink = system
        .root()
        .spawn_named(
            &Props::from_func(|_| {}).with_propagated(&propagated),
            "sink",
        )
        .unwrap();
    let a = system
        .root()
        .spawn_named(
            &Props::from_func(move |ctx| {
                if ctx.message().is::<Ping>() {
                    let sink = sink.clone();
                    ctx.reenter_after_with_context(async {}, move |ctx, ()| ctx.send(&sink, Pong));
                }
            })
            .with_propagated(&propagated),
            "a",
        )
        .unwrap();
    system.root().send(&a, Ping);
    let recv_pong = span(&exporter, "receive Pong");
    let cont = span(&exporter, "continue Ping");
    let recv_ping = span(&exporter, "receive Ping");
    assert_eq!(cont.parent_span_id, recv_ping.span_context.span_id());
    assert_eq!(recv_pong.parent_span_id, cont.span_context.span_id());
    assert_eq!(
        recv_pong.span_context.trace_id(),
        recv_ping.span_context.trace_id()
    );
}

/// Spawning under a message span makes a `spawn` span, parent of the child's `Started`.
#[test]
fn spawn_spans_parent_the_childs_started() {
    let (_provider, exporter, tracing) = setup();
    let system = ActorSystem::new();
    let a = system
        .root()
        .spawn_named(
            &Props::from_func(|ctx| {
                if ctx.message().is::<Ping>() {
                    ctx.spawn_named(&Props::from_func(|_| {}), "kid").unwrap();
                }
            })
            .with_propagated(&tracing.propagation()),
            "a",
        )
        .unwrap();
    system.root().send(&a, Ping);
    // a's own Started and the kid's
    let started = spans(&exporter, "receive Started", 2)
        .into_iter()
        .find(|s| attr(s, "actor.pid").is_some_and(|p| p.ends_with("a/kid")))
        .expect("the kid's Started span");
    let spawn = span(&exporter, "spawn");
    let ping = span(&exporter, "receive Ping");
    assert_eq!(attr(&spawn, "actor.id").as_deref(), Some("a/kid"));
    assert_eq!(spawn.parent_span_id, ping.span_context.span_id());
    assert_eq!(started.parent_span_id, spawn.span_context.span_id());
    assert_eq!(
        started.span_context.trace_id(),
        ping.span_context.trace_id()
    );
}

/// A panic while handling a message marks its span as an error with a `failure` event;
/// the restart that follows has its own span.
#[test]
fn a_failure_is_recorded_on_the_span() {
    let (_provider, exporter, tracing) = setup();
    let system = ActorSystem::new();
    let a = system
        .root()
        .spawn_named(
            &Props::from_func(|ctx| {
                if ctx.message().is::<Ping>() {
                    panic!("boom");
                }
            })
            .with_propagated(&tracing.propagation()),
            "a",
        )
        .unwrap();
    system.root().send(&a, Ping);
    let ping = span(&exporter, "receive Ping");
    assert!(
        matches!(ping.status, Status::Error { .. }),
        "{:?}",
        ping.status
    );
    assert!(ping.events.iter().any(|e| e.name == "failure"));
    let restarting = span(&exporter, "receive Restarting");
    assert_eq!(attr(&restarting, "actor.pid"), attr(&ping, "actor.pid"));
}

/// Log lines written by the test binary's subscriber.
#[derive(Clone, Default)]
struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `tracing` events inside `receive` carry the actor's PID and the message type (the
/// `actor` span the receiver middleware enters).
#[test]
fn log_events_in_receive_carry_pid_and_message_type() {
    let lines = Lines::default();
    let writer = lines.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .expect("the only global subscriber of this test binary");
    let (_provider, _exporter, tracing) = setup();
    let system = ActorSystem::new();
    let a = system
        .root()
        .spawn_named(
            &Props::from_func(|ctx| {
                if ctx.message().is::<Ping>() {
                    tracing::info!("handling the ping");
                    ctx.respond(Pong);
                }
            })
            .with_propagated(&tracing.propagation()),
            "logging",
        )
        .unwrap();
    system
        .root()
        .request_future(&a, Ping, WAIT)
        .result_as::<Pong>()
        .expect("a response");
    let out = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let line = out
        .lines()
        .find(|l| l.contains("handling the ping"))
        .unwrap_or_else(|| panic!("no log line in {out}"));
    assert!(line.contains(&format!("pid={a}")), "{line}");
    assert!(
        line.contains("message_type=\"tracing_otel::Ping\""),
        "{line}"
    );
}

/// A propagator of its own: `x-trace: <trace id>:<span id>`.
#[derive(Debug)]
struct XTrace;

impl opentelemetry::propagation::TextMapPropagator for XTrace {
    fn inject_context(
        &self,
        cx: &opentelemetry::Context,
        injector: &mut dyn opentelemetry::propagation::Injector,
    ) {
        let sc = cx.span().span_context().clone();
        if sc.is_valid() {
            injector.set("x-trace", format!("{}:{}", sc.trace_id(), sc.span_id()));
        }
    }
    fn extract_with_context(
        &self,
        cx: &opentelemetry::Context,
        extractor: &dyn opentelemetry::propagation::Extractor,
    ) -> opentelemetry::Context {
        use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
        let sc = extractor.get("x-trace").and_then(|v| {
            let (t, s) = v.split_once(':')?;
            Some(SpanContext::new(
                TraceId::from_hex(t).ok()?,
                SpanId::from_hex(s).ok()?,
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            ))
        });
        match sc {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }
    fn fields(&self) -> opentelemetry::propagation::text_map_propagator::FieldIter<'_> {
        static FIELDS: std::sync::OnceLock<[String; 1]> = std::sync::OnceLock::new();
        opentelemetry::propagation::text_map_propagator::FieldIter::new(
            FIELDS.get_or_init(|| ["x-trace".to_string()]),
        )
    }
}

/// The propagator is pluggable: with another one, its headers carry the span context
/// (and no W3C `traceparent`), and the parent links hold.
#[test]
fn another_propagator_carries_the_context() {
    let (provider, exporter, tracing) = setup();
    let tracing = tracing.with_propagator(XTrace);
    let system = ActorSystem::new();
    let root = system
        .root()
        .with_sender_middleware(tracing.sender_middleware());
    let (p, rx) = common::probe::<Vec<String>>();
    let a = root
        .spawn_named(
            &Props::from_func(move |ctx| {
                if ctx.message().is::<Ping>() {
                    let mut keys: Vec<String> = ctx
                        .header()
                        .map(|h| h.keys().map(str::to_owned).collect())
                        .unwrap_or_default();
                    keys.sort();
                    p.push(keys);
                }
            })
            .with_propagated(&tracing.propagation()),
            "x",
        )
        .unwrap();
    let client = provider.tracer("test").in_span("client", |cx| {
        root.send(&a, Ping);
        cx.span().span_context().span_id()
    });
    assert_eq!(rx.next(), ["x-trace"]);
    let ping = span(&exporter, "receive Ping");
    assert_eq!(ping.parent_span_id, client);
}

/// A request that times out ends its `request` span as an error.
#[test]
fn a_timed_out_request_span_is_an_error() {
    let (_provider, exporter, tracing) = setup();
    let system = ActorSystem::new();
    let root = system
        .root()
        .with_sender_middleware(tracing.sender_middleware());
    let silent = root.spawn(&Props::from_func(|_| {}));
    let r = root
        .request_future(&silent, Ping, Duration::from_millis(50))
        .result();
    assert!(matches!(r, Err(protoactor::FutureError::Timeout { .. })));
    let request = span(&exporter, "request Ping");
    assert!(
        matches!(&request.status, Status::Error { description } if description.contains("timed out after")),
        "{:?}",
        request.status
    );
}
