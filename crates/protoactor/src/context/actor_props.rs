//! The actor and its props: an actor receives a [`Context`], a context owns its actor and
//! keeps its [`Props`], and props make actors and hold middleware over contexts. These types
//! name each other, so they are defined together, in the context module (re-exported by
//! `actor.rs` and `props.rs`, where their users look). Building props is `props.rs`;
//! spawning is `spawn.rs`.

use std::any::Any;
use std::sync::Arc;

use super::Context;
use crate::dispatcher::Dispatcher;
use crate::mailbox::MailboxConfig;
use crate::message::MessageEnvelope;
use crate::middleware_chain::{Middleware, MiddlewareChain};
use crate::pid::Pid;
use crate::registry::NameExists;
use crate::supervision::SupervisorStrategy;
use crate::system::ActorSystem;

/// An actor: state plus a synchronous `receive` that handles one message at a time.
///
/// ```
/// use protoactor::prelude::*;
///
/// struct Greeter;
/// struct Hello { who: String }
///
/// impl Actor for Greeter {
///     fn receive(&mut self, ctx: &mut Context) {
///         match_message!(ctx.message(), {
///             Hello: h => println!("Hello {}", h.who),
///             _ => {}
///         });
///     }
/// }
/// ```
pub trait Actor: Any + Send {
    /// Handles the current message (`ctx.message()`).
    fn receive(&mut self, ctx: &mut Context);

    /// An actor that returns a strategy here supervises its own children with it, instead
    /// of the strategy in its props.
    fn supervisor_strategy(&self) -> Option<Arc<dyn SupervisorStrategy>> {
        None
    }
}

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

/// A closure actor, made by [`Props::from_func`](crate::Props::from_func).
pub struct FuncActor(pub(crate) Arc<dyn Fn(&mut Context) + Send + Sync>);

impl Actor for FuncActor {
    fn receive(&mut self, ctx: &mut Context) {
        (self.0)(ctx)
    }
}

impl std::fmt::Debug for FuncActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FuncActor")
    }
}

/// An actor instance as its context holds it: boxed, or a closure actor inline (its box
/// would be one more allocation per actor for the two words of the shared closure).
pub(crate) enum ActorSlot {
    Boxed(Box<dyn Actor>),
    Func(FuncActor),
}

impl std::ops::Deref for ActorSlot {
    type Target = dyn Actor;
    fn deref(&self) -> &(dyn Actor + 'static) {
        match self {
            ActorSlot::Boxed(a) => &**a,
            ActorSlot::Func(f) => f,
        }
    }
}

impl std::ops::DerefMut for ActorSlot {
    fn deref_mut(&mut self) -> &mut (dyn Actor + 'static) {
        match self {
            ActorSlot::Boxed(a) => &mut **a,
            ActorSlot::Func(f) => f,
        }
    }
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
    /// Propagations already applied, by identity (each at most once; the type is
    /// `middleware_propagation.rs`'s, above this module).
    pub(crate) propagations: Vec<Arc<dyn Any + Send + Sync>>,
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

/// Sends `envelope` to `target` through a sender middleware chain (directly without one),
/// as `owner` (the sending actor, `None` for a root context).
#[inline(always)]
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
