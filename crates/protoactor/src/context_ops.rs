//! The sending, spawning and stopping surface shared by [`Context`](crate::Context) and
//! [`RootContext`](crate::RootContext) (protoactor-go's `SenderContext`, `SpawnerContext` and
//! `StopperContext`), written once as default methods over four required ones.

use std::sync::Arc;
use std::time::Duration;

use crate::context::{Context, Props, SpawnError};
use crate::future::{poison_future, stop_future, ActorFuture};
use crate::message::{Message, MessageEnvelope, PoisonPill};
use crate::pid::Pid;
use crate::props::validate_name;
use crate::registry::with_joined;
use crate::system::ActorSystem;

/// What an actor's [`Context`](crate::Context) and a [`RootContext`](crate::RootContext)
/// can both do: send, request, spawn, stop and poison. In the prelude.
///
/// ```
/// use protoactor::prelude::*;
/// // works with either context
/// fn greet(ctx: &impl ContextOps, who: &Pid) {
///     ctx.send(who, "hello");
/// }
/// let system = ActorSystem::new();
/// let pid = system.root().spawn(&Props::from_func(|_| {}));
/// greet(&system.root(), &pid);
/// ```
pub trait ContextOps {
    /// The actor system.
    fn system(&self) -> &ActorSystem;

    /// The actor on whose behalf this context sends and spawns: the sender of its requests
    /// and the parent of its spawns (`None` for a root context).
    fn owner(&self) -> Option<&Pid>;

    /// Sends an envelope through this context's sender middleware.
    fn send_envelope(&self, target: &Pid, envelope: MessageEnvelope);

    /// Spawns `props` named `name`: for an actor, a child with id `<self id>/<name>`.
    ///
    /// Fails with [`SpawnError::InvalidName`] for an empty name or one containing `/`.
    fn spawn_named(&self, props: &Props, name: &str) -> Result<Pid, SpawnError>;

    /// Sends `message` to `target` (no sender).
    #[inline]
    fn send<M: Message>(&self, target: &Pid, message: M)
    where
        Self: Sized,
    {
        self.send_envelope(target, MessageEnvelope::new(message))
    }

    /// Sends `message` with the [`owner`](ContextOps::owner) as the sender, so the target
    /// can respond (a root context sets no sender, as protoactor-go's `RootContext.Request`).
    fn request<M: Message>(&self, target: &Pid, message: M)
    where
        Self: Sized,
    {
        let sender = self.owner().cloned();
        self.send_envelope(target, MessageEnvelope::new(message).with_sender(sender))
    }

    /// Sends `message` with `sender` as the sender.
    fn request_with_custom_sender<M: Message>(&self, target: &Pid, message: M, sender: &Pid)
    where
        Self: Sized,
    {
        self.send_envelope(
            target,
            MessageEnvelope::new(message).with_sender(Some(sender.clone())),
        )
    }

    /// Sends `message` and returns a future of the response
    /// ([`ActorFuture::NO_TIMEOUT`]: no timeout).
    fn request_future<M: Message>(&self, target: &Pid, message: M, timeout: Duration) -> ActorFuture
    where
        Self: Sized,
    {
        let (fut, envelope) = request_parts(self.system(), target, message, timeout);
        self.send_envelope(target, envelope);
        fut
    }

    /// Spawns with a generated name.
    ///
    /// On failure (system shut down) the error is logged and the returned PID leads to dead letters.
    fn spawn(&self, props: &Props) -> Pid
    where
        Self: Sized,
    {
        let name = self.system().registry().next_id_buf();
        spawn_or_dead(self, props, name.as_str())
    }

    /// Spawns with the name `prefix` + a generated id.
    fn spawn_prefix(&self, props: &Props, prefix: &str) -> Pid
    where
        Self: Sized,
    {
        let generated = self.system().registry().next_id_buf();
        with_joined(&[prefix, generated.as_str()], |name| {
            spawn_or_dead(self, props, name)
        })
    }

    /// Stops `pid` at once (queued user messages are not processed).
    fn stop(&self, pid: &Pid) {
        pid.resolve(self.system()).stop(pid);
    }

    /// Stops `pid`; the future completes with `Terminated` when it is gone (10 s timeout).
    fn stop_future(&self, pid: &Pid) -> ActorFuture {
        stop_future(self.system(), pid)
    }

    /// Stops `pid` after the messages already in its mailbox.
    fn poison(&self, pid: &Pid) {
        pid.send_user_message(self.system(), MessageEnvelope::new(PoisonPill));
    }

    /// Poisons `pid`; the future completes with `Terminated` when it is gone (10 s timeout).
    fn poison_future(&self, pid: &Pid) -> ActorFuture {
        poison_future(self.system(), pid)
    }
}

impl ContextOps for Context {
    #[inline]
    fn system(&self) -> &ActorSystem {
        Context::system(self)
    }

    #[inline]
    fn owner(&self) -> Option<&Pid> {
        Some(self.self_pid())
    }

    /// Sends through this actor's sender middleware.
    #[inline]
    fn send_envelope(&self, target: &Pid, envelope: MessageEnvelope) {
        self.send_as_self(target, envelope)
    }

    fn spawn_named(&self, props: &Props, name: &str) -> Result<Pid, SpawnError> {
        validate_name(name)?;
        self.spawn_named_unvalidated(props, name)
    }
}

/// Spawns, or logs the error and returns a PID that leads to dead letters.
/// A request's reply future and its envelope, whose sender is the future (the one recipe of
/// `request_future` and `RootContext::request_async`).
pub(crate) fn request_parts<M: Message>(
    system: &ActorSystem,
    target: &Pid,
    message: M,
    timeout: Duration,
) -> (ActorFuture, MessageEnvelope) {
    let envelope = MessageEnvelope::new(message);
    // The boxed message's type: `M` may itself be a `BoxedMessage`.
    let message_type = envelope.message.type_name();
    let fut = ActorFuture::for_request(system, timeout, target, message_type);
    let envelope = envelope.with_sender(Some(fut.pid().clone()));
    (fut, envelope)
}

fn spawn_or_dead<C: ContextOps>(ctx: &C, props: &Props, name: &str) -> Pid {
    ctx.spawn_named(props, name).unwrap_or_else(|e| {
        tracing::error!(parent = ?ctx.owner(), error = %e, "spawn failed");
        let id: Arc<str> = match ctx.owner() {
            Some(owner) => Arc::from(format!("{}/{}", owner.id(), name)),
            None => Arc::from(name),
        };
        Pid::with_parts(ctx.system().registry().address(), id, 0)
    })
}
