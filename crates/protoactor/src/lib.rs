//! # protoactor
//!
//! Proto.Actor for Rust: the local actor system. Actors are spawned from [`Props`], addressed
//! by [`Pid`]s and driven through a [`Context`]: `send`, `request`, `request_future`,
//! `respond`, `spawn`, `watch`, `stop`, with supervision, middleware, behaviors, routers and a
//! scheduler, following protoactor-go's semantics. Remoting, clustering and persistence are
//! the crates `protoactor-remote`, `protoactor-cluster` and `protoactor-persistence`; the
//! guide (the `protoactor-guide` crate) walks through all of them.
//!
//! ```
//! use protoactor::prelude::*;
//! use std::time::Duration;
//!
//! struct Hello { who: String }
//!
//! struct HelloActor;
//! impl Actor for HelloActor {
//!     fn receive(&mut self, ctx: &mut Context) {
//!         match_message!(ctx.message(), {
//!             Hello: h => ctx.respond(format!("Hello {}", h.who)),
//!             _ => {}
//!         });
//!     }
//! }
//!
//! let system = ActorSystem::new();
//! let pid = system.root().spawn(&Props::from_producer(|| HelloActor));
//! let reply = system
//!     .root()
//!     .request_future(&pid, Hello { who: "Roger".into() }, Duration::from_secs(1))
//!     .result_as::<String>()
//!     .unwrap();
//! assert_eq!(reply, "Hello Roger");
//! ```
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `metrics` | no | OpenTelemetry metrics named like protoactor-go's (`protoactor_actor_spawn_count`, …), recorded with the meter given to `Config::with_meter` |
//! | `tracing-otel` | no | the `tracing_otel` module: OpenTelemetry spans per message and request, span context carried in message headers (W3C `traceparent`) |
//!
//! Without features the crate depends on tokio, tracing and a few data-structure crates.

#![cfg_attr(docsrs, feature(doc_cfg))]
// ## Layers (internal; docs/architecture.md explains them)
//
// A module names (`crate::module`) only modules of its own layer or of lower ones, and no
// modules name each other in a cycle; scripts/check-layers.sh reads this table.
//
//  0 data       pid, message, failure, process, middleware_chain
//                 ids, messages, failure reports, the process trait and system messages
//  1 system     config, throttle, event_stream, message_traits, registry, metrics, system
//                 the process registry and the system handle; a PID resolves and sends here
//  2 processes  dead_letter, future, supervision, guardian, dispatcher
//                 processes that are not actors, supervision policy, where mailboxes run
//  3 mailbox    mailbox
//                 mailbox config, queues (mailbox/queue.rs), scheduling state (mailbox/sched.rs)
//  4 actor      context, actor, actor_process, spawn, props, middleware_propagation, context_ops
//                 the actor, its context and the types of its props (context/*.rs), closure
//                 actors and behaviors, the process that runs an actor, spawning, building
//                 props, the send/spawn surface shared with the root context
//  5 top        bootstrap, root_context, router, scheduler, middleware, runtime, tracing_otel
//                 starting a system, sending from outside, ready-made actors and middleware,
//                 the runtime-level API for crates that extend the system
// No unsafe code but one audited exception (`deny`, allowed item by item there, each block
// with a SAFETY comment): `message.rs`, where an envelope's message is a pointer to the
// message itself, owned as a box or one reference of a shared message, or a small message
// stored in the envelope (the kind marked in the header slot), and a `SharedMessage` finds
// its reference-counted cell from the message's address (see `SharedMessage`, `Payload` and
// `HeaderSlot`).
#![deny(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

// The README's code is compiled and run as a doc test, so the tour cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

pub mod actor;
mod actor_process;
mod bootstrap;
mod config;
pub mod context;
mod context_ops;
pub mod dead_letter;
pub mod dispatcher;
pub mod event_stream;
mod failure;
pub mod future;
mod guardian;
pub mod mailbox;
pub mod message;
mod message_traits;
mod metrics;
pub mod middleware;
mod middleware_chain;
mod middleware_propagation;
pub mod pid;
mod process;
pub mod props;
mod registry;
pub mod root_context;
pub mod router;
pub mod runtime;
pub mod scheduler;
mod spawn;
pub mod supervision;
pub mod system;
pub mod throttle;
#[cfg(feature = "tracing-otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing-otel")))]
pub mod tracing_otel;

pub use actor::{Actor, Behavior, FuncActor, ReceiveFn};
pub use context::Context;
pub use context_ops::ContextOps;
pub use dead_letter::DeadLetterEvent;
pub use dispatcher::Dispatcher;
pub use event_stream::{EventStream, Subscription};
pub use future::{ActorFuture, FutureError};
pub use mailbox::{MailboxConfig, MailboxMiddleware};
pub use message::{
    BoxedMessage, DeadLetterResponse, Message, MessageBatch, MessageEnvelope, MessageHeader,
    PoisonPill, ReceiveTimeout, Restarting, SharedBatches, SharedMessage, Started, Stop, Stopped,
    Stopping, Terminated, TerminatedReason, Touch, Touched,
};
pub use pid::Pid;
pub use props::{Props, SpawnError};
pub use root_context::RootContext;
pub use supervision::{
    AllForOneStrategy, Directive, ExponentialBackoffStrategy, FailureReason, OneForOneStrategy,
    RestartingStrategy, SupervisorEvent, SupervisorStrategy,
};
pub use system::{ActorSystem, Config};

/// Everything ordinary programs use: actors, props, contexts and their shared
/// [`ContextOps`] (send, request, spawn, stop), lifecycle messages,
/// supervision strategies and events, dead letters, spawn errors and the middleware
/// function types.
pub mod prelude {
    pub use crate::match_message;
    pub use crate::props::{ContextDecorator, ReceiverFunc, SenderContext, SenderFunc, SpawnFunc};
    pub use crate::{
        Actor, ActorFuture, ActorSystem, AllForOneStrategy, Behavior, Context, ContextOps,
        DeadLetterEvent, DeadLetterResponse, Directive, Dispatcher, ExponentialBackoffStrategy,
        FailureReason, FutureError, MailboxConfig, Message, MessageEnvelope, MessageHeader,
        OneForOneStrategy, Pid, PoisonPill, Props, ReceiveTimeout, Restarting, RestartingStrategy,
        RootContext, SpawnError, Started, Stopped, Stopping, SupervisorEvent, SupervisorStrategy,
        Terminated, TerminatedReason, Touch, Touched,
    };
}

/// Matches a message (`&dyn Message`) by type, without `downcast_ref` chains.
///
/// Each arm is `Type: pattern => expression`; the pattern binds a `&Type`. An optional last
/// arm `_ => expression` handles everything else.
///
/// ```
/// use protoactor::prelude::*;
/// struct Add(u32);
/// struct Reset;
/// fn handle(total: &mut u32, msg: &dyn Message) -> &'static str {
///     match_message!(msg, {
///         Add: Add(n) => { *total += n; "added" },
///         Reset: _ => { *total = 0; "reset" },
///         _ => "ignored",
///     })
/// }
/// let mut t = 0;
/// assert_eq!(handle(&mut t, &Add(2)), "added");
/// assert_eq!(handle(&mut t, &"x"), "ignored");
/// assert_eq!(t, 2);
/// ```
#[macro_export]
macro_rules! match_message {
    ($msg:expr, { $($arms:tt)* }) => {{
        let __msg: &dyn $crate::Message = $msg;
        $crate::match_message!(@arm __msg; $($arms)*)
    }};
    (@arm $m:ident; _ => $default:expr $(,)?) => { $default };
    (@arm $m:ident; $ty:ty : $p:pat_param => $body:expr $(, $($rest:tt)*)?) => {
        if let ::core::option::Option::Some($p) = $m.downcast_ref::<$ty>() {
            $body
        } else {
            $crate::match_message!(@arm $m; $($($rest)*)?)
        }
    };
    (@arm $m:ident; ) => { () };
}
