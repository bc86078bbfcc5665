//! The root context: sending and spawning from outside any actor.

use std::sync::Arc;
use std::time::Duration;

use crate::context_ops::{request_parts, ContextOps};
use crate::dispatcher::{run_handed_off, send_handing_off};
use crate::future::FutureError;
use crate::guardian::guardian_pid;
use crate::message::{BoxedMessage, Message, MessageEnvelope, MessageHeader};
use crate::middleware_chain::MiddlewareChain;
use crate::pid::Pid;
use crate::props::{
    send_through, sender_base, spawn_base, validate_name, Props, SenderFunc, SpawnError, SpawnFunc,
};
use crate::spawn::spawn;
use crate::supervision::SupervisorStrategy;
use crate::system::ActorSystem;

/// Sends and spawns from outside actors, through [`ContextOps`] (in the prelude).
/// Requests from the root context carry no sender (use
/// [`request_future`](ContextOps::request_future) to get a response).
///
/// ```
/// use protoactor::prelude::*;
/// let system = ActorSystem::new();
/// let pid = system.root().spawn(&Props::from_func(|ctx| {
///     if let Some(name) = ctx.message_as::<&str>() { println!("Hello {name}"); }
/// }));
/// system.root().send(&pid, "Roger");
/// ```
#[derive(Clone, Debug)]
pub struct RootContext {
    system: ActorSystem,
    header: Option<Arc<MessageHeader>>,
    sender_chain: MiddlewareChain<SenderFunc>,
    spawn_chain: MiddlewareChain<SpawnFunc>,
    guardian: Option<GuardianStrategy>,
}

/// A guardian's strategy (shown by address in `Debug`: strategies are not `Debug`).
#[derive(Clone)]
struct GuardianStrategy(Arc<dyn SupervisorStrategy>);

impl std::fmt::Debug for GuardianStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GuardianStrategy({:p})", Arc::as_ptr(&self.0))
    }
}

impl ActorSystem {
    /// The root context.
    pub fn root(&self) -> RootContext {
        RootContext::new(self.clone())
    }
}

impl RootContext {
    pub(crate) fn new(system: ActorSystem) -> Self {
        Self {
            system,
            header: None,
            sender_chain: MiddlewareChain::new(),
            spawn_chain: MiddlewareChain::new(),
            guardian: None,
        }
    }

    /// The actor system.
    pub fn system(&self) -> &ActorSystem {
        &self.system
    }

    /// A root context whose messages carry `header`.
    pub fn with_header(mut self, header: MessageHeader) -> Self {
        self.header = Some(Arc::new(header));
        self
    }
    /// A root context with sender middleware (first added runs outermost).
    pub fn with_sender_middleware<F>(mut self, middleware: F) -> Self
    where
        F: Fn(SenderFunc) -> SenderFunc + Send + Sync + 'static,
    {
        self.sender_chain.push(Arc::new(middleware), sender_base());
        self
    }
    /// A root context with spawn middleware.
    pub fn with_spawn_middleware<F>(mut self, middleware: F) -> Self
    where
        F: Fn(SpawnFunc) -> SpawnFunc + Send + Sync + 'static,
    {
        self.spawn_chain.push(Arc::new(middleware), spawn_base());
        self
    }
    /// A root context whose spawns are supervised by a guardian with `strategy`.
    pub fn with_guardian(mut self, strategy: impl SupervisorStrategy) -> Self {
        self.guardian = Some(GuardianStrategy(Arc::new(strategy)));
        self
    }
    /// Sends `message` to `target` when first polled and resolves to the response, as
    /// `request_future(target, message, timeout).await` does
    /// ([`ActorFuture::NO_TIMEOUT`](crate::ActorFuture::NO_TIMEOUT): no timeout). Like any
    /// Rust future it does nothing until polled: the request is sent by the first poll, not
    /// by this call.
    ///
    /// Awaited by a task on the system's runtime, an idle target's turn runs in the awaiting
    /// task right after the send, so a reply that the turn gives completes the request
    /// without waking another task or thread (`request_future` wakes the target's task,
    /// and the reply wakes the requester's; on a multi-threaded runtime one hand-off in a
    /// few then moves to the other worker thread, which is the tail of a round trip). The
    /// turns it runs count against the task's tokio budget, so a loop of requests still
    /// yields to the worker's other tasks.
    ///
    /// ```
    /// use protoactor::prelude::*;
    /// use std::time::Duration;
    /// let system = ActorSystem::new();
    /// let echo = system.root().spawn(&Props::from_func(|ctx| {
    ///     if let Some(n) = ctx.message_as::<u32>() { ctx.respond(n + 1); }
    /// }));
    /// let root = system.root();
    /// let reply = system.runtime().block_on(async {
    ///     root.request_async(&echo, 41u32, Duration::from_secs(5)).await
    /// });
    /// assert_eq!(reply.ok().and_then(|m| m.downcast_ref::<u32>().copied()), Some(42));
    /// ```
    pub async fn request_async<M: Message>(
        &self,
        target: &Pid,
        message: M,
        timeout: Duration,
    ) -> Result<BoxedMessage, FutureError> {
        // A unit of the task's budget per request: requests answered in the awaiting task
        // never return `Pending`, so without it a loop of them would never yield.
        tokio::task::consume_budget().await;
        let (fut, envelope) = request_parts(&self.system, target, message, timeout);
        if on_runtime_of(&self.system) {
            let identity = self.system.identity();
            if let Some(turn) = send_handing_off(identity, || self.send_envelope(target, envelope))
            {
                run_handed_off(identity, turn);
            }
        } else {
            self.send_envelope(target, envelope);
        }
        fut.await
    }
}

/// True on a thread inside `system`'s runtime (a worker, or a `block_on` of it): where an
/// actor's turn may run.
fn on_runtime_of(system: &ActorSystem) -> bool {
    tokio::runtime::Handle::try_current().is_ok_and(|h| h.id() == system.runtime().id())
}

impl ContextOps for RootContext {
    #[inline]
    fn system(&self) -> &ActorSystem {
        &self.system
    }

    #[inline]
    fn owner(&self) -> Option<&Pid> {
        None
    }

    /// Sends an envelope through the sender middleware (adding this context's header if the
    /// envelope has none).
    // Forced: LLVM may otherwise leave it a call of its own per send (about 45 instructions
    // more, callgrind).
    #[inline(always)]
    fn send_envelope(&self, target: &Pid, mut envelope: MessageEnvelope) {
        if envelope.message.header.is_none() {
            envelope.message.header.fill(&self.header);
        }
        send_through(
            self.sender_chain.get(),
            &self.system,
            None,
            target,
            envelope,
        )
    }

    /// Spawns a top-level actor named `name` (under a guardian if the props or this
    /// context have a guardian strategy).
    fn spawn_named(&self, props: &Props, name: &str) -> Result<Pid, SpawnError> {
        validate_name(name)?;
        let guardian = props
            .0
            .guardian
            .clone()
            .or_else(|| self.guardian.as_ref().map(|g| g.0.clone()));
        let parent = guardian.map(|g| guardian_pid(&self.system, g));
        let props = if props.0.guardian.is_some() {
            // the guardian is the parent now; the props spawn normally below it
            let mut p = props.clone();
            Arc::make_mut(&mut p.0).guardian = None;
            p
        } else {
            props.clone()
        };
        match self.spawn_chain.get() {
            Some(chain) => chain(&self.system, name, &props, parent.as_ref()),
            None => spawn(&self.system, name, &props, parent.as_ref()),
        }
    }
}
