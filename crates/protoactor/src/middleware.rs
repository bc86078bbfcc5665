//! Ready-made middleware: logging of inbound and outbound messages, and of spawns.
//!
//! ```
//! use protoactor::prelude::*;
//! use protoactor::middleware;
//! let props = Props::from_func(|_| {})
//!     .with_receiver_middleware(middleware::receive_logger("in"))
//!     .with_sender_middleware(middleware::send_logger("out"))
//!     .with_spawn_middleware(middleware::spawn_logger("spawn"));
//! # let _ = props;
//! ```

use std::sync::Arc;

pub use crate::middleware_propagation::MiddlewarePropagation;

use crate::context::Context;
use crate::message::MessageEnvelope;
use crate::pid::Pid;
use crate::props::{Props, ReceiverFunc, SenderContext, SenderFunc, SpawnFunc};
use crate::system::ActorSystem;

/// Receiver middleware that logs each inbound message (at info level) before passing it on.
pub fn receive_logger(label: &'static str) -> impl Fn(ReceiverFunc) -> ReceiverFunc + Send + Sync {
    move |next: ReceiverFunc| -> ReceiverFunc {
        Arc::new(move |ctx: &mut Context, env: MessageEnvelope| {
            tracing::info!(label, actor = %ctx.self_pid(), message = env.message.type_name(), "receive");
            next(ctx, env)
        })
    }
}

/// Sender middleware that logs each outbound message before passing it on.
pub fn send_logger(label: &'static str) -> impl Fn(SenderFunc) -> SenderFunc + Send + Sync {
    move |next: SenderFunc| -> SenderFunc {
        Arc::new(
            move |sc: &SenderContext<'_>, target: &Pid, env: MessageEnvelope| {
                tracing::info!(label, from = ?sc.self_pid, to = %target, message = env.message.type_name(), "send");
                next(sc, target, env)
            },
        )
    }
}

/// Spawn middleware that logs each spawn and its result.
pub fn spawn_logger(label: &'static str) -> impl Fn(SpawnFunc) -> SpawnFunc + Send + Sync {
    move |next: SpawnFunc| -> SpawnFunc {
        Arc::new(
            move |system: &ActorSystem, id: &str, props: &Props, parent: Option<&Pid>| {
                let r = next(system, id, props, parent);
                tracing::info!(label, id, parent = ?parent, ok = r.is_ok(), "spawn");
                r
            },
        )
    }
}
