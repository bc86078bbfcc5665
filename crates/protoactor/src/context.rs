//! The actor context: what an actor sees and can do while it handles a message.
//!
//! The machinery behind it has one file per concept: `context/invoke.rs` (delivering a
//! message), `context/lifecycle.rs` (start, stop, restart, watch, failure),
//! `context/reenter.rs` (continuing after a future) and `context/receive_timeout.rs`.
//! Sending, spawning and stopping are [`ContextOps`](crate::ContextOps), shared with the root
//! context (`context_ops.rs`, above this module; spawning a child is in `spawn.rs`).
//!
//! The [`Actor`] trait and the types of [`Props`] are defined in this module too, in
//! `context/actor_props.rs`: they and the context name each other.

mod actor_props;
mod children;
mod invoke;
mod lifecycle;
mod receive_timeout;
mod reenter;

pub(crate) use actor_props::{send_through, ActorMaker, ActorSlot, PropsInner};
pub use actor_props::{
    Actor, ContextDecorator, FuncActor, OnInit, Producer, Props, ReceiverFunc, ReceiverMiddleware,
    SenderContext, SenderFunc, SenderMiddleware, SpawnError, SpawnFunc, SpawnMiddleware,
};

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexSet;

use crate::failure::{FailureReason, RestartStatistics};
use crate::message::{Message, MessageEnvelope, MessageHeader};
use crate::pid::Pid;
use crate::process::SystemMessage;
use crate::system::ActorSystem;

use children::ChildSet;
use receive_timeout::TimeoutTimer;

type PidSet = IndexSet<Pid, foldhash::fast::RandomState>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Alive,
    Restarting,
    Stopping,
    Stopped,
}

/// Two variants, so that the envelope's non-null box pointer holds the tag (32 bytes, not 40).
enum Current {
    Owned(MessageEnvelope),
    /// No message (`Current::NONE`), or one retained in a slot for `reenter_after`
    /// continuations.
    Slot(Option<NonZeroU64>),
}

impl Current {
    /// No message: an empty slot.
    const NONE: Current = Current::Slot(None);
}

/// State most actors never need, allocated on first use (keeps idle actors small).
#[derive(Default)]
struct Extras {
    watchers: PidSet,
    stash: Vec<MessageEnvelope>,
    slots: HashMap<u64, (MessageEnvelope, usize)>,
    next_slot: u64,
    receive_timeout: Option<(Duration, Arc<TimeoutTimer>)>,
    /// Set by `fail`, taken once the current `receive` returns.
    pending_failure: Option<FailureReason>,
}

/// What a parent or a failed actor needs. A cell because spawning and escalating take
/// `&self` (surfaces shared with the root context and supervisors).
#[derive(Default)]
struct Family {
    children: RefCell<ChildSet>,
    restart_stats: OnceCell<RestartStatistics>,
}

/// Everything an idle actor does not need, in one box allocated on first use: one word in
/// every context instead of one per part (`Context` 104 bytes, a 112-byte malloc chunk,
/// instead of 112 in a 128-byte one).
#[derive(Default)]
struct Rare {
    extras: Extras,
    family: Family,
}

/// The context of an actor: its identity, the current message, and the operations of
/// Proto.Actor (send, request, respond, spawn, watch, stop, …).
pub struct Context {
    system: ActorSystem,
    props: Props,
    self_pid: Pid,
    parent: Option<Pid>,
    actor: Option<ActorSlot>,
    current: Current,
    state: State,
    /// The extras and the family, allocated on first use (a cell, as `Family` says).
    rare: OnceCell<Box<Rare>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("self_pid", &self.self_pid)
            .field("parent", &self.parent)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

static NO_MESSAGE: () = ();

impl Context {
    pub(crate) fn new(system: &ActorSystem, props: Props, pid: Pid, parent: Option<Pid>) -> Self {
        let actor = props.0.producer.make(system);
        Context {
            system: system.clone(),
            props,
            self_pid: pid,
            parent,
            actor: Some(actor),
            current: Current::NONE,
            state: State::Alive,
            rare: OnceCell::new(),
        }
    }

    fn extras(&mut self) -> &mut Extras {
        self.rare.get_or_init(Default::default);
        &mut self.rare.get_mut().expect("initialized above").extras
    }

    fn extras_ref(&self) -> Option<&Extras> {
        self.rare.get().map(|r| &r.extras)
    }

    fn extras_mut(&mut self) -> Option<&mut Extras> {
        self.rare.get_mut().map(|r| &mut r.extras)
    }

    fn family(&self) -> Option<&Family> {
        self.rare.get().map(|r| &r.family)
    }

    fn family_mut(&mut self) -> Option<&mut Family> {
        self.rare.get_mut().map(|r| &mut r.family)
    }

    fn family_or_init(&self) -> &Family {
        &self.rare.get_or_init(Default::default).family
    }

    /// The children, if this actor ever spawned one.
    fn children_set(&self) -> Option<&RefCell<ChildSet>> {
        self.family().map(|f| &f.children)
    }

    /// The failure `fail` left for after the current `receive`, if any.
    #[inline]
    fn take_pending_failure(&mut self) -> Option<FailureReason> {
        self.extras_mut().and_then(|e| e.pending_failure.take())
    }

    // ---------------------------------------------------------------- info

    /// The actor system.
    pub fn system(&self) -> &ActorSystem {
        &self.system
    }
    /// This actor's PID.
    pub fn self_pid(&self) -> &Pid {
        &self.self_pid
    }
    /// The parent's PID (`None` for top-level actors).
    pub fn parent(&self) -> Option<&Pid> {
        self.parent.as_ref()
    }
    /// The props this actor was spawned with.
    pub fn props(&self) -> &Props {
        &self.props
    }
    /// The children, in spawn order.
    pub fn children(&self) -> Vec<Pid> {
        self.children_set()
            .map(|c| c.borrow().iter().cloned().collect())
            .unwrap_or_default()
    }
    /// The actor instance (for example to downcast in middleware).
    pub fn actor(&self) -> Option<&dyn Actor> {
        self.actor.as_deref()
    }

    // Inlined into every `message()` an actor's receive calls (twice per message at least:
    // the type check of `default_receive` and the actor's own); the slot lookup stays out
    // of line.
    #[inline]
    fn envelope(&self) -> Option<&MessageEnvelope> {
        match &self.current {
            Current::Owned(env) => Some(env),
            Current::Slot(Some(id)) => self.slot_envelope(id.get()),
            Current::Slot(None) => None,
        }
    }

    #[inline(never)]
    fn slot_envelope(&self, id: u64) -> Option<&MessageEnvelope> {
        self.extras_ref()
            .and_then(|e| e.slots.get(&id))
            .map(|(env, _)| env)
    }

    /// The current message (`()` outside message handling).
    #[inline]
    pub fn message(&self) -> &dyn Message {
        match self.envelope() {
            Some(env) => &*env.message,
            None => &NO_MESSAGE,
        }
    }
    /// The current message as a `T`, if it is one.
    pub fn message_as<T: Message>(&self) -> Option<&T> {
        self.message().downcast_ref::<T>()
    }
    /// Moves the current message out if it is a `T` (afterwards `message()` is `()`).
    /// Messages retained by `reenter_after` cannot be taken. A [`SharedMessage`](crate::SharedMessage)
    /// is copied unless this receiver holds its last reference.
    #[inline]
    pub fn take_message<T: Message>(&mut self) -> Option<T> {
        let Current::Owned(env) = &mut self.current else {
            return None;
        };
        env.take_message::<T>()
    }
    /// The current message's header.
    pub fn header(&self) -> Option<&MessageHeader> {
        self.envelope().and_then(|e| e.message.header.get())
    }
    /// Who sent the current message, if it was a request.
    pub fn sender(&self) -> Option<&Pid> {
        self.envelope().and_then(|e| e.sender.as_ref())
    }

    // ---------------------------------------------------------------- sending

    // Sending, spawning and stopping are `ContextOps` (shared with the root context);
    // these are what only an actor can do.

    /// Sends `message` to the sender of the current message (to dead letters if none).
    pub fn respond<M: Message>(&self, message: M) {
        match self.sender() {
            Some(s) => {
                let s = s.clone();
                self.send_as_self(&s, MessageEnvelope::new(message))
            }
            None => {
                let dl = self.system.dead_letter();
                dl.send_user_message(&self.system, MessageEnvelope::new(message));
            }
        }
    }
    /// Forwards the current message (with its sender and header) to `target`, through this
    /// actor's sender middleware (as protoactor-go does).
    ///
    /// **Deviation from protoactor-go:** the message moves, so afterwards `message()` is `()`
    /// (sender and header stay readable). Go keeps the message because it shares a pointer;
    /// a Rust message is an owned `Box<dyn Any>` that cannot be cloned in general, and
    /// sending a copy later would reorder it behind this actor's later sends.
    pub fn forward(&mut self, target: &Pid) {
        match std::mem::replace(&mut self.current, Current::NONE) {
            Current::Owned(env) => {
                let placeholder = MessageEnvelope::from_boxed(Box::new(()))
                    .with_sender(env.sender.clone())
                    .with_header(env.header_arc());
                self.current = Current::Owned(placeholder);
                self.send_as_self(target, env);
            }
            other => {
                self.current = other;
                tracing::error!(pid = %self.self_pid, "forward: no owned message to forward");
            }
        }
    }

    // ---------------------------------------------------------------- watching

    /// Watches `pid`: this actor gets `Terminated` when it is gone.
    pub fn watch(&self, pid: &Pid) {
        pid.send_system_message(
            &self.system,
            SystemMessage::Watch {
                watcher: self.self_pid.clone(),
            },
        );
    }
    /// Stops watching `pid`.
    pub fn unwatch(&self, pid: &Pid) {
        pid.send_system_message(
            &self.system,
            SystemMessage::Unwatch {
                watcher: self.self_pid.clone(),
            },
        );
    }

    // ---------------------------------------------------------------- misc

    /// Stashes the current message; stashed messages are delivered again, in the order they
    /// were stashed, after the actor restarts. The message moves: afterwards `message()` is `()`.
    pub fn stash(&mut self) {
        match std::mem::replace(&mut self.current, Current::NONE) {
            Current::Owned(env) => self.extras().stash.push(env),
            other => {
                self.current = other;
                tracing::warn!(pid = %self.self_pid, "stash: the current message cannot be stashed");
            }
        }
    }

    /// How many messages are stashed.
    pub fn stash_len(&self) -> usize {
        self.extras_ref().map_or(0, |e| e.stash.len())
    }

    /// Fails this actor without panicking: once the current `receive` returns, the failure
    /// goes to the supervisor exactly as a panic would.
    pub fn fail(&mut self, reason: FailureReason) {
        self.extras().pending_failure = Some(reason);
    }

    /// True once the final stop is done (the runner then finishes the process).
    pub(crate) fn is_stopped(&self) -> bool {
        self.state == State::Stopped
    }
}

impl Context {
    /// Sends through this actor's sender middleware, as this actor (the body of
    /// `ContextOps::send_envelope`, which is implemented above this module).
    #[inline]
    pub(crate) fn send_as_self(&self, target: &Pid, envelope: MessageEnvelope) {
        send_through(
            self.props.0.sender_chain.get(),
            &self.system,
            Some(&self.self_pid),
            target,
            envelope,
        )
    }

    /// Records a spawned child (spawning is `spawn.rs`).
    pub(crate) fn add_child(&self, pid: Pid) {
        self.family_or_init().children.borrow_mut().insert(pid);
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Context>();
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A detached context for unit tests of code that takes `&mut Context`.
    pub(crate) fn context(system: &ActorSystem) -> Context {
        let pid = system.new_local_pid("test");
        Context::new(system, Props::from_func(|_| {}), pid, None)
    }
}

#[cfg(test)]
mod tests {
    /// Spawn-heavy programs hold millions of idle contexts: state few actors use (children,
    /// stash, watchers, a pending failure) stays out of line.
    #[test]
    fn an_idle_context_stays_small() {
        // 144 before the children and the pending failure moved out of line, 136 before the
        // restart statistics joined the children and the pending failure the extras, 112
        // before the extras and the family shared one box; at most 104 it is a 112-byte
        // malloc chunk instead of 128.
        let size = std::mem::size_of::<super::Context>();
        assert!(size <= 104, "Context grew to {size} bytes");
    }
}
