//! Tracing with OpenTelemetry: one trace follows a request from the caller through an
//! actor, a child it spawns, a `request_future` to another actor and the `reenter_after`
//! continuation that responds. The spans go to an in-memory exporter and are printed as a
//! tree (a program would install an OTLP exporter instead).
//!
//! Run with `cargo run -p protoactor --example tracing --features tracing-otel`. Prints:
//! ```text
//! checkout
//!   request Order [shop]
//!     receive Order [shop]
//!       continue Order [shop]
//!       receive Audit [shop/audit]
//!       request Charge [billing]
//!         receive Charge [billing]
//!       spawn [shop/audit]
//!         receive Started [shop/audit]
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanId, TraceContextExt, TraceId, Tracer, TracerProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use protoactor::prelude::*;
use protoactor::tracing_otel::OtelTracing;

struct Order;
struct Audit;
struct Charge;
struct Charged;

fn main() {
    // Framework logs go to stderr; RUST_LOG picks the level (`info` when unset).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracing = OtelTracing::with_tracer_provider(&provider);
    // one setting: these actors and all their descendants trace
    let traced = tracing.propagation();

    let system = ActorSystem::new();
    // root sends carry the caller's current span
    let root = system
        .root()
        .with_sender_middleware(tracing.sender_middleware());
    let billing = root
        .spawn_named(
            &Props::from_func(|ctx| {
                if ctx.message().is::<Charge>() {
                    ctx.respond(Charged);
                }
            })
            .with_propagated(&traced),
            "billing",
        )
        .unwrap();
    let shop = Props::from_func(move |ctx| {
        if ctx.message().is::<Order>() {
            let audit = ctx.spawn_named(&Props::from_func(|_| {}), "audit").unwrap();
            ctx.send(&audit, Audit);
            let charged = ctx.request_future(&billing, Charge, Duration::from_secs(5));
            ctx.reenter_after_with_context(charged, |ctx, _| ctx.respond("ok"));
        }
    })
    .with_propagated(&traced);
    let shop = root.spawn_named(&shop, "shop").unwrap();

    let tracer = provider.tracer("example");
    let trace = tracer.in_span("checkout", |cx| {
        let reply = root.request_future(&shop, Order, Duration::from_secs(5));
        reply.result_as::<&str>().expect("the order is done");
        cx.span().span_context().trace_id()
    });

    print_tree(&wait_for_trace(&exporter, trace, 9));
}

/// The spans of `trace`, once `n` of them have ended (spans export when they end).
fn wait_for_trace(exporter: &InMemorySpanExporter, trace: TraceId, n: usize) -> Vec<SpanData> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let spans: Vec<_> = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|s| s.span_context.trace_id() == trace)
            .collect();
        if spans.len() >= n || Instant::now() > deadline {
            return spans;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn print_tree(spans: &[SpanData]) {
    let mut children: HashMap<SpanId, Vec<&SpanData>> = HashMap::new();
    for s in spans {
        children.entry(s.parent_span_id).or_default().push(s);
    }
    for list in children.values_mut() {
        // by name: siblings on different actors run concurrently, so start times race
        list.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let ids: Vec<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
    let roots = spans.iter().filter(|s| !ids.contains(&s.parent_span_id));
    for root in roots {
        print_span(root, &children, 0);
    }
}

fn print_span(s: &SpanData, children: &HashMap<SpanId, Vec<&SpanData>>, depth: usize) {
    let attr = |key: &str| {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    // a receive names the PID (`address/id`; one address here, so the id is shown), a
    // request its target, a spawn the new actor's id
    let actor = match (attr("actor.pid").or(attr("actor.target")), attr("actor.id")) {
        (Some(pid), _) => format!(" [{}]", pid.split_once('/').map_or(&*pid, |(_, id)| id)),
        (None, Some(id)) => format!(" [{id}]"),
        (None, None) => String::new(),
    };
    println!("{}{}{}", "  ".repeat(depth), s.name, actor);
    for c in children
        .get(&s.span_context.span_id())
        .into_iter()
        .flatten()
    {
        print_span(c, children, depth + 1);
    }
}
