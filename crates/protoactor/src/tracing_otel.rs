//! OpenTelemetry tracing middleware (feature `tracing-otel`), after protoactor-go's
//! `actor/middleware/opentracing`: a span per received message, spawn spans, and the span
//! context carried in message headers (W3C `traceparent`/`tracestate` by default, any
//! OpenTelemetry [`TextMapPropagator`] instead), so traces follow messages through local
//! sends, forwards, `request_future`, `reenter_after` continuations and remote nodes.
//!
//! While an actor handles a message, the handling span is the current OpenTelemetry
//! context of the thread, and a `tracing` span `actor{pid, message_type}` is entered, so
//! log events inside `receive` carry the actor's PID and the message type.
//!
//! ```
//! use protoactor::prelude::*;
//! use protoactor::tracing_otel::OtelTracing;
//! let tracing = OtelTracing::global(); // the global tracer provider, W3C propagation
//! let system = ActorSystem::new();
//! // root sends carry the caller's current span; the actor and all its descendants trace
//! let root = system.root().with_sender_middleware(tracing.sender_middleware());
//! let pid = root.spawn(&Props::from_func(|_| {}).with_propagated(&tracing.propagation()));
//! root.send(&pid, "hello");
//! ```

use std::borrow::Cow;
use std::sync::Arc;

use dashmap::{DashMap, DashSet};
use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context as OtelContext, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use parking_lot::Mutex;

use crate::context::Context;
use crate::message::{MessageEnvelope, MessageHeader, Started};
use crate::middleware_propagation::MiddlewarePropagation;
use crate::pid::Pid;
use crate::process::CompletionHook;
use crate::props::{Props, ReceiverFunc, SenderContext, SenderFunc, SpawnFunc};
use crate::system::ActorSystem;

/// The name of the instrumentation scope of the spans this module makes.
pub const TRACER_NAME: &str = "protoactor";

/// Tracing middleware over one tracer and one propagator. Cheap to clone; the middleware
/// it makes share it.
#[derive(Clone)]
pub struct OtelTracing(Arc<Inner>);

struct Inner {
    tracer: Arc<BoxedTracer>,
    propagator: Box<dyn TextMapPropagator + Send + Sync>,
    /// The spawn span of each child spawned but not started yet, keyed by its id: a child's
    /// `Started` is a system message without a header (Go keeps the same map).
    spawning: DashMap<String, OtelContext>,
    /// The futures with an open `request` span: a forward of the request keeps its pair's
    /// span instead of opening another.
    requests: DashSet<String>,
}

impl std::fmt::Debug for OtelTracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelTracing").finish_non_exhaustive()
    }
}

impl OtelTracing {
    /// Spans from the global tracer provider (`opentelemetry::global`), W3C propagation.
    pub fn global() -> Self {
        Self::from_tracer(global::tracer(TRACER_NAME))
    }

    /// Spans from `provider`, W3C propagation.
    pub fn with_tracer_provider<P>(provider: &P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        Self::from_tracer(BoxedTracer::new(Box::new(provider.tracer(TRACER_NAME))))
    }

    fn from_tracer(tracer: BoxedTracer) -> Self {
        OtelTracing(Arc::new(Inner {
            tracer: Arc::new(tracer),
            propagator: Box::new(TraceContextPropagator::new()),
            spawning: DashMap::new(),
            requests: DashSet::new(),
        }))
    }

    /// Carries span contexts in headers with `propagator` (Jaeger, B3, a composite, ...)
    /// instead of W3C trace context.
    pub fn with_propagator(
        self,
        propagator: impl TextMapPropagator + Send + Sync + 'static,
    ) -> Self {
        OtelTracing(Arc::new(Inner {
            tracer: self.0.tracer.clone(),
            propagator: Box::new(propagator),
            spawning: DashMap::new(),
            requests: DashSet::new(),
        }))
    }

    /// All the middleware and the decorator, handed down to every descendant: install with
    /// [`Props::with_propagated`](crate::Props::with_propagated).
    pub fn propagation(&self) -> MiddlewarePropagation {
        MiddlewarePropagation::new()
            .with_spawn_middleware(self.spawn_middleware())
            .with_sender_middleware(self.sender_middleware())
            .with_receiver_middleware(self.receiver_middleware())
            .with_context_decorator(self.context_decorator())
    }

    /// Receiver middleware: a span per message (child of the span in its header, of the
    /// spawn span for `Started`), current while the actor handles it; a panic marks it as
    /// an error. The message's header is rewritten to carry this span, so continuations of
    /// the message resume under it.
    pub fn receiver_middleware(
        &self,
    ) -> impl Fn(ReceiverFunc) -> ReceiverFunc + Send + Sync + 'static {
        let me = self.clone();
        move |next: ReceiverFunc| -> ReceiverFunc {
            let me = me.clone();
            Arc::new(move |ctx: &mut Context, mut env: MessageEnvelope| {
                let message_type = env.message().type_name();
                let parent = if env.message().is::<Started>() {
                    me.0.spawning.remove(ctx.self_pid().id()).map(|(_, cx)| cx)
                } else {
                    None
                };
                let parent = parent.unwrap_or_else(|| me.extract(env.header()));
                let cx = me.start(
                    &parent,
                    "receive",
                    SpanKind::Consumer,
                    ctx.self_pid(),
                    message_type,
                );
                me.0.propagator
                    .inject_context(&cx, &mut EnvelopeInjector(&mut env));
                let _ended = EndOnDrop(&cx);
                let _attached = cx.clone().attach();
                let _log =
                    tracing::info_span!("actor", pid = %ctx.self_pid(), message_type).entered();
                next(ctx, env)
            })
        }
    }

    /// Sender middleware: puts the current span context (the span of the message being
    /// handled, or the caller's span for a root context) into the envelope's header; a
    /// `request_future` gets a `request <Type>` span around the request/response pair,
    /// ended when the future completes, and carries that instead. A
    /// message sent with no current span keeps its header (a forwarded message keeps the
    /// context it came with only when it is forwarded outside a span).
    pub fn sender_middleware(&self) -> impl Fn(SenderFunc) -> SenderFunc + Send + Sync + 'static {
        let me = self.clone();
        move |next: SenderFunc| -> SenderFunc {
            let me = me.clone();
            Arc::new(
                move |sc: &SenderContext<'_>, target: &Pid, mut env: MessageEnvelope| {
                    let mut cx = OtelContext::current();
                    if let Some(request) = me.request_span(sc.system, &cx, target, &env) {
                        cx = request;
                    }
                    if cx.span().span_context().is_valid() {
                        me.0.propagator
                            .inject_context(&cx, &mut EnvelopeInjector(&mut env));
                    }
                    next(sc, target, env)
                },
            )
        }
    }

    /// Spawn middleware: a span around each spawn (child of the current span), parent of the
    /// child's `Started` span; a failed spawn is an error on it. The children need this
    /// tracing's receiver middleware (as [`propagation`](OtelTracing::propagation) gives
    /// them), which takes the spawn span when the child starts.
    pub fn spawn_middleware(&self) -> impl Fn(SpawnFunc) -> SpawnFunc + Send + Sync + 'static {
        let me = self.clone();
        move |next: SpawnFunc| -> SpawnFunc {
            let me = me.clone();
            Arc::new(
                move |system: &ActorSystem, id: &str, props: &Props, parent: Option<&Pid>| {
                    let mut builder =
                        me.0.tracer
                            .span_builder("spawn")
                            .with_kind(SpanKind::Internal);
                    builder = builder.with_attributes(vec![
                        KeyValue::new("actor.id", id.to_owned()),
                        KeyValue::new(
                            "actor.parent",
                            parent.map(|p| p.to_string()).unwrap_or_default(),
                        ),
                    ]);
                    let span =
                        me.0.tracer
                            .build_with_context(builder, &OtelContext::current());
                    let cx = OtelContext::current().with_span(span);
                    // before spawning: the child may start on another thread at once
                    me.0.spawning.insert(id.to_owned(), cx.clone());
                    let result = next(system, id, props, parent);
                    if let Err(e) = &result {
                        me.0.spawning.remove(id);
                        cx.span().set_status(Status::error(e.to_string()));
                    }
                    cx.span().end();
                    result
                },
            )
        }
    }

    /// Context decorator: a `reenter_after` continuation runs under a span that is a child
    /// of the span of the message it continues (the decorator is all that runs around a
    /// continuation); around `receive` it only passes through.
    pub fn context_decorator(
        &self,
    ) -> impl Fn(&mut Context, &mut dyn FnMut(&mut Context)) + Send + Sync + 'static {
        let me = self.clone();
        move |ctx: &mut Context, next: &mut dyn FnMut(&mut Context)| {
            if OtelContext::current().span().span_context().is_valid() {
                return next(ctx);
            }
            let message_type = ctx.message().type_name();
            let parent = me.extract(ctx.header());
            let cx = me.start(
                &parent,
                "continue",
                SpanKind::Internal,
                ctx.self_pid(),
                message_type,
            );
            let _ended = EndOnDrop(&cx);
            let _attached = cx.clone().attach();
            let _log = tracing::info_span!("actor", pid = %ctx.self_pid(), message_type).entered();
            next(ctx)
        }
    }

    /// For a message whose sender is a future (`request_future`): a `request <Type>` span,
    /// child of `parent`, that ends when the future completes (an error on a timeout or a
    /// dead letter); the receiver's span becomes its child.
    fn request_span(
        &self,
        system: &ActorSystem,
        parent: &OtelContext,
        target: &Pid,
        env: &MessageEnvelope,
    ) -> Option<OtelContext> {
        let sender = env.sender()?;
        if self.0.requests.contains(sender.id()) {
            return None;
        }
        // filled once the span exists; the future cannot complete before the request is sent
        let slot: Arc<Mutex<Option<OtelContext>>> = Arc::default();
        let filled = slot.clone();
        let (me, id) = (self.clone(), sender.id().to_owned());
        let hook: CompletionHook = Box::new(move |error: Option<&str>| {
            me.0.requests.remove(&id);
            if let Some(cx) = filled.lock().take() {
                if let Some(e) = error {
                    cx.span().set_status(Status::error(e.to_owned()));
                }
                cx.span().end();
            }
        });
        sender.resolve(system).on_completion(hook).ok()?;
        self.0.requests.insert(sender.id().to_owned());
        let message_type = env.message().type_name();
        let builder = self
            .0
            .tracer
            .span_builder(format!("request {}", short_type(message_type)))
            .with_kind(SpanKind::Client)
            .with_attributes(vec![
                KeyValue::new("actor.target", target.to_string()),
                KeyValue::new("message.type", message_type),
            ]);
        let cx = parent.with_span(self.0.tracer.build_with_context(builder, parent));
        *slot.lock() = Some(cx.clone());
        Some(cx)
    }

    fn extract(&self, header: Option<&MessageHeader>) -> OtelContext {
        self.0.propagator.extract(&HeaderExtractor(header))
    }

    fn start(
        &self,
        parent: &OtelContext,
        what: &'static str,
        kind: SpanKind,
        pid: &Pid,
        message_type: &'static str,
    ) -> OtelContext {
        let name = format!("{what} {}", short_type(message_type));
        let builder = self
            .0
            .tracer
            .span_builder(Cow::Owned(name))
            .with_kind(kind)
            .with_attributes(vec![
                KeyValue::new("actor.pid", pid.to_string()),
                KeyValue::new("message.type", message_type),
            ]);
        parent.with_span(self.0.tracer.build_with_context(builder, parent))
    }
}

/// `a::b::C<d::E>` -> `C<E>`: span names stay short, the attribute keeps the full path.
fn short_type(full: &str) -> String {
    // the path-free parts, with the punctuation put back in the order it appeared
    let mut result = String::with_capacity(full.len());
    let mut parts = full
        .split(['<', '>', ','])
        .map(|p| p.rsplit("::").next().unwrap_or(p).trim());
    result.push_str(parts.next().unwrap_or(""));
    for c in full.chars().filter(|c| matches!(c, '<' | '>' | ',')) {
        result.push(c);
        if c == ',' {
            result.push(' ');
        }
        result.push_str(parts.next().unwrap_or(""));
    }
    result
}

/// Ends the span of a context when dropped, as an error if the handler panicked.
struct EndOnDrop<'a>(&'a OtelContext);

impl Drop for EndOnDrop<'_> {
    fn drop(&mut self) {
        let span = self.0.span();
        if std::thread::panicking() {
            span.add_event("failure", vec![KeyValue::new("failure.kind", "panic")]);
            span.set_status(Status::error("the actor panicked"));
        }
        span.end();
    }
}

struct HeaderExtractor<'a>(Option<&'a MessageHeader>);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.and_then(|h| h.get(key))
    }
    fn keys(&self) -> Vec<&str> {
        self.0.map(|h| h.keys().collect()).unwrap_or_default()
    }
}

struct EnvelopeInjector<'a>(&'a mut MessageEnvelope);

impl Injector for EnvelopeInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.set_header(key, value);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_type_names() {
        assert_eq!(super::short_type("protoactor::message::Started"), "Started");
        assert_eq!(super::short_type("&str"), "&str");
        assert_eq!(super::short_type("a::B<c::D, e::F>"), "B<D, F>");
    }
}
