//! Props: how to create and run an actor.

use std::sync::Arc;

use crate::actor::{Actor, ActorSlot, FuncActor};
use crate::context::Context;
use crate::dispatcher::Dispatcher;
use crate::mailbox::MailboxConfig;
use crate::message::MessageEnvelope;
use crate::middleware_chain::{Middleware, MiddlewareChain};
use crate::middleware_propagation::{MiddlewarePropagation, PropagationInner};
use crate::pid::Pid;
use crate::registry::NameExists;
use crate::spawn::spawn;
use crate::supervision::SupervisorStrategy;
use crate::system::ActorSystem;

/// Makes a new actor instance (called at spawn and at every restart).
pub type Producer = Arc<dyn Fn(&ActorSystem) -> Box<dyn Actor> + Send + Sync>;

/// The inbound path of a message into an actor.
pub type ReceiverFunc = Arc<dyn Fn(&mut Context, MessageEnvelope) + Send + Sync>;
/// Wraps the inbound path; the first registered runs outermost.
pub type ReceiverMiddleware = Middleware<ReceiverFunc>;

/// Who is sending, as seen by sender middleware.
pub struct SenderContext<'a> {
    /// The system.
    pub system: &'a ActorSystem,
    /// The sending actor (`None` for the root context).
    pub self_pid: Option<&'a Pid>,
}

impl std::fmt::Debug for SenderContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderContext")
            .field("self_pid", &self.self_pid)
            .finish_non_exhaustive()
    }
}

/// The outbound path of a message from an actor (or root context) to a target.
pub type SenderFunc = Arc<dyn Fn(&SenderContext<'_>, &Pid, MessageEnvelope) + Send + Sync>;
/// Wraps the outbound path; the first registered runs outermost.
pub type SenderMiddleware = Middleware<SenderFunc>;

/// Spawns a process: `(system, id, props, parent)`.
pub type SpawnFunc =
    Arc<dyn Fn(&ActorSystem, &str, &Props, Option<&Pid>) -> Result<Pid, SpawnError> + Send + Sync>;
/// Wraps spawning of children (of actors with these props, or of a root context).
pub type SpawnMiddleware = Middleware<SpawnFunc>;

/// Wraps every invocation of the actor with access to its context (the first registered
/// runs outermost). Rust cannot substitute the `Context` type the way Go decorates its
/// context interface, so a decorator runs code around the actor's `receive` instead.
pub type ContextDecorator = Arc<dyn Fn(&mut Context, &mut dyn FnMut(&mut Context)) + Send + Sync>;

/// Runs when a context is created, before `Started`.
pub type OnInit = Arc<dyn Fn(&mut Context) + Send + Sync>;

/// Why a spawn failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    /// The name is taken; the PID holding it is given.
    #[error("spawn: name already exists: {0}")]
    NameExists(Pid),
    /// The name is empty or contains the id separator `/` (a child's id is
    /// `<parent id>/<name>`, so such a name could take another actor's child's id).
    #[error("spawn: invalid actor name {0:?}: a name must be non-empty and must not contain '/'")]
    InvalidName(String),
    /// Guardian props can only be spawned from the root context.
    #[error("props with a guardian strategy can only be spawned from the root context")]
    GuardianOnChild,
    /// The system is shut down.
    #[error("the actor system is shut down")]
    SystemShutDown,
    /// The props' dispatcher runs no actors any more (a stopped
    /// [`PinnedGroup`](crate::dispatcher::PinnedGroup)).
    #[error("the dispatcher is stopped")]
    DispatcherStopped,
}

impl From<NameExists> for SpawnError {
    fn from(e: NameExists) -> Self {
        SpawnError::NameExists(e.0)
    }
}

/// The separator of the parts of a child's id (`parent/child`).
pub const ID_SEPARATOR: char = '/';

/// Checks a name given to `spawn_named` (or a prefix with its generated suffix).
pub(crate) fn validate_name(name: &str) -> Result<(), SpawnError> {
    if name.is_empty() || name.contains(ID_SEPARATOR) {
        return Err(SpawnError::InvalidName(name.to_owned()));
    }
    Ok(())
}

/// How props make an actor: a producer, or a closure all incarnations share (kept apart so
/// that a closure actor lives inline in its context, see [`ActorSlot`]).
#[derive(Clone)]
pub(crate) enum ActorMaker {
    Producer(Producer),
    Func(Arc<dyn Fn(&mut Context) + Send + Sync>),
}

impl ActorMaker {
    pub(crate) fn make(&self, system: &ActorSystem) -> ActorSlot {
        match self {
            ActorMaker::Producer(p) => ActorSlot::Boxed(p(system)),
            ActorMaker::Func(f) => ActorSlot::Func(FuncActor(f.clone())),
        }
    }
}

#[derive(Clone)]
pub(crate) struct PropsInner {
    pub(crate) producer: ActorMaker,
    pub(crate) mailbox: MailboxConfig,
    pub(crate) dispatcher: Option<Dispatcher>,
    pub(crate) supervisor: Option<Arc<dyn SupervisorStrategy>>,
    pub(crate) guardian: Option<Arc<dyn SupervisorStrategy>>,
    pub(crate) receiver_chain: MiddlewareChain<ReceiverFunc>,
    pub(crate) sender_chain: MiddlewareChain<SenderFunc>,
    pub(crate) spawn_chain: MiddlewareChain<SpawnFunc>,
    pub(crate) context_decorators: Vec<ContextDecorator>,
    pub(crate) on_init: Vec<OnInit>,
    pub(crate) spawner: Option<SpawnFunc>,
    /// Propagations already applied (each at most once).
    pub(crate) propagations: Vec<Arc<PropagationInner>>,
}

/// How to create and run an actor: producer, mailbox, dispatcher, supervisor strategy,
/// middleware. Cheap to clone.
///
/// ```
/// use protoactor::prelude::*;
/// struct Counter(u64);
/// impl Actor for Counter {
///     fn receive(&mut self, ctx: &mut Context) {
///         if ctx.message_as::<u64>().is_some() { self.0 += 1; }
///     }
/// }
/// let props = Props::from_producer(|| Counter(0))
///     .with_mailbox(MailboxConfig::bounded(1000))
///     .with_dispatcher(Dispatcher::new(300));
/// # let _ = props;
/// ```
#[derive(Clone)]
pub struct Props(pub(crate) Arc<PropsInner>);

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
    /// Installs `propagation` on these props and hands it down: this actor and every
    /// descendant get its middleware and decorators (after their own), as protoactor-go's
    /// middleware propagator does.
    pub fn with_propagated(self, propagation: &MiddlewarePropagation) -> Self {
        propagation.apply(&self)
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

/// Sends `envelope` to `target` through a sender middleware chain (directly without one),
/// as `owner` (the sending actor, `None` for a root context).
#[inline]
pub(crate) fn send_through(
    chain: Option<&SenderFunc>,
    system: &ActorSystem,
    owner: Option<&Pid>,
    target: &Pid,
    envelope: MessageEnvelope,
) {
    match chain {
        None => target.send_user_message(system, envelope),
        Some(chain) => chain(
            &SenderContext {
                system,
                self_pid: owner,
            },
            target,
            envelope,
        ),
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
