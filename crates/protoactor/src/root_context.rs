//! The root context: sending and spawning from outside any actor.

use std::sync::Arc;

use crate::context_ops::ContextOps;
use crate::guardian::guardian_pid;
use crate::message::{MessageEnvelope, MessageHeader};
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
    #[inline]
    fn send_envelope(&self, target: &Pid, mut envelope: MessageEnvelope) {
        if envelope.header.is_none() {
            envelope.header = self.header.clone();
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
