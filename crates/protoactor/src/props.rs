//! Props: how to create and run an actor. The `Props` type and the function types it holds
//! are defined with the context (`context/actor_props.rs`), because a context keeps its
//! props and the props hold middleware over contexts; building props is here.

use std::sync::Arc;

pub(crate) use crate::context::{send_through, ActorMaker, PropsInner};
use crate::context::{Actor, Context};
#[doc(inline)]
pub use crate::context::{
    ContextDecorator, OnInit, Producer, Props, ReceiverFunc, ReceiverMiddleware, SenderContext,
    SenderFunc, SenderMiddleware, SpawnError, SpawnFunc, SpawnMiddleware,
};
use crate::dispatcher::Dispatcher;
use crate::mailbox::MailboxConfig;
use crate::middleware_chain::MiddlewareChain;
use crate::pid::Pid;
use crate::spawn::spawn;
use crate::supervision::SupervisorStrategy;
use crate::system::ActorSystem;

/// The separator of the parts of a child's id (`parent/child`).
pub const ID_SEPARATOR: char = '/';

/// Checks a name given to `spawn_named` (or a prefix with its generated suffix).
pub(crate) fn validate_name(name: &str) -> Result<(), SpawnError> {
    if name.is_empty() || name.contains(ID_SEPARATOR) {
        return Err(SpawnError::InvalidName(name.to_owned()));
    }
    Ok(())
}

impl Props {
    /// Props whose actors are made by `producer`.
    pub fn from_producer<A, F>(producer: F) -> Self
    where
        A: Actor,
        F: Fn() -> A + Send + Sync + 'static,
    {
        Self::from_boxed_producer(Arc::new(move |_| Box::new(producer())))
    }

    /// Props whose actors are made by `producer`, which gets the actor system.
    pub fn from_producer_with_system<A, F>(producer: F) -> Self
    where
        A: Actor,
        F: Fn(&ActorSystem) -> A + Send + Sync + 'static,
    {
        Self::from_boxed_producer(Arc::new(move |s| Box::new(producer(s))))
    }

    /// Props for a closure actor (all incarnations share the closure; keep state in a
    /// producer-made actor instead).
    pub fn from_func<F>(f: F) -> Self
    where
        F: Fn(&mut Context) + Send + Sync + 'static,
    {
        Self::from_maker(ActorMaker::Func(Arc::new(f)))
    }

    /// Props from a type-erased producer.
    pub fn from_boxed_producer(producer: Producer) -> Self {
        Self::from_maker(ActorMaker::Producer(producer))
    }

    fn from_maker(producer: ActorMaker) -> Self {
        Props(Arc::new(PropsInner {
            producer,
            mailbox: MailboxConfig::default(),
            dispatcher: None,
            supervisor: None,
            guardian: None,
            receiver_chain: MiddlewareChain::new(),
            sender_chain: MiddlewareChain::new(),
            spawn_chain: MiddlewareChain::new(),
            context_decorators: Vec::new(),
            on_init: Vec::new(),
            spawner: None,
            propagations: Vec::new(),
        }))
    }

    fn edit(mut self, f: impl FnOnce(&mut PropsInner)) -> Self {
        f(Arc::make_mut(&mut self.0));
        self
    }

    pub(crate) fn edit_inner(self, f: impl FnOnce(&mut PropsInner)) -> Self {
        self.edit(f)
    }

    /// Replaces the producer.
    pub fn with_producer<A, F>(self, producer: F) -> Self
    where
        A: Actor,
        F: Fn() -> A + Send + Sync + 'static,
    {
        self.edit(|p| p.producer = ActorMaker::Producer(Arc::new(move |_| Box::new(producer()))))
    }
    /// Replaces the producer with a closure actor.
    pub fn with_func<F>(self, f: F) -> Self
    where
        F: Fn(&mut Context) + Send + Sync + 'static,
    {
        self.edit(|p| p.producer = ActorMaker::Func(Arc::new(f)))
    }
    /// Sets the mailbox.
    pub fn with_mailbox(self, mailbox: MailboxConfig) -> Self {
        self.edit(|p| p.mailbox = mailbox)
    }
    /// Sets the dispatcher.
    pub fn with_dispatcher(self, dispatcher: Dispatcher) -> Self {
        self.edit(|p| p.dispatcher = Some(dispatcher))
    }
    /// Sets the strategy that supervises this actor's children.
    pub fn with_supervisor(self, strategy: impl SupervisorStrategy) -> Self {
        let s: Arc<dyn SupervisorStrategy> = Arc::new(strategy);
        self.edit(|p| p.supervisor = Some(s))
    }
    /// Sets a shared strategy that supervises this actor's children.
    pub fn with_supervisor_arc(self, strategy: Arc<dyn SupervisorStrategy>) -> Self {
        self.edit(|p| p.supervisor = Some(strategy))
    }
    /// Root spawns only: the actor's failures go to a guardian with this strategy.
    pub fn with_guardian(self, strategy: impl SupervisorStrategy) -> Self {
        let s: Arc<dyn SupervisorStrategy> = Arc::new(strategy);
        self.edit(|p| p.guardian = Some(s))
    }
    /// Adds receiver (inbound) middleware; the first added runs outermost.
    pub fn with_receiver_middleware<F>(self, middleware: F) -> Self
    where
        F: Fn(ReceiverFunc) -> ReceiverFunc + Send + Sync + 'static,
    {
        self.edit(|p| p.receiver_chain.push(Arc::new(middleware), receiver_base()))
    }
    /// Adds sender (outbound) middleware; the first added runs outermost.
    pub fn with_sender_middleware<F>(self, middleware: F) -> Self
    where
        F: Fn(SenderFunc) -> SenderFunc + Send + Sync + 'static,
    {
        self.edit(|p| p.sender_chain.push(Arc::new(middleware), sender_base()))
    }
    /// Adds spawn middleware (wrapping spawns of this actor's children).
    pub fn with_spawn_middleware<F>(self, middleware: F) -> Self
    where
        F: Fn(SpawnFunc) -> SpawnFunc + Send + Sync + 'static,
    {
        self.edit(|p| p.spawn_chain.push(Arc::new(middleware), spawn_base()))
    }
    /// Adds a context decorator.
    pub fn with_context_decorator<F>(self, decorator: F) -> Self
    where
        F: Fn(&mut Context, &mut dyn FnMut(&mut Context)) + Send + Sync + 'static,
    {
        self.edit(|p| p.context_decorators.push(Arc::new(decorator)))
    }
    /// Runs `f` on each new context, before `Started`.
    pub fn with_on_init<F>(self, f: F) -> Self
    where
        F: Fn(&mut Context) + Send + Sync + 'static,
    {
        self.edit(|p| p.on_init.push(Arc::new(f)))
    }
    /// Replaces how the process is spawned (routers use this).
    pub fn with_spawn_func(self, f: SpawnFunc) -> Self {
        self.edit(|p| p.spawner = Some(f))
    }
    /// Removes a custom spawn function.
    pub fn without_spawn_func(self) -> Self {
        self.edit(|p| p.spawner = None)
    }

    /// The mailbox config.
    pub fn mailbox(&self) -> &MailboxConfig {
        &self.0.mailbox
    }
}

impl std::fmt::Debug for Props {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Props")
            .field("mailbox", &self.0.mailbox)
            .field("dispatcher", &self.0.dispatcher)
            .finish_non_exhaustive()
    }
}

/// The innermost step of a receiver chain: the context's own receive.
pub(crate) fn receiver_base() -> ReceiverFunc {
    Arc::new(|ctx: &mut Context, env| ctx.receive_envelope(env))
}

/// The innermost step of a sender chain: deliver.
pub(crate) fn sender_base() -> SenderFunc {
    Arc::new(|sc: &SenderContext<'_>, target: &Pid, env| target.send_user_message(sc.system, env))
}

/// The innermost step of a spawn chain: spawn with the props.
pub(crate) fn spawn_base() -> SpawnFunc {
    Arc::new(
        |system: &ActorSystem, id: &str, props: &Props, parent: Option<&Pid>| {
            spawn(system, id, props, parent)
        },
    )
}
