//! The actor context: what an actor sees and can do while it handles a message.
//!
//! The machinery behind it has one file per concept: `context/invoke.rs` (delivering a
//! message), `context/lifecycle.rs` (start, stop, restart, watch, failure),
//! `context/reenter.rs` (continuing after a future) and `context/receive_timeout.rs`.
//! Sending, spawning and stopping are [`ContextOps`], shared with the root context.

mod invoke;
mod lifecycle;
mod receive_timeout;
mod reenter;

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use indexmap::IndexSet;

use crate::actor::Actor;
use crate::actor_process::ActorProcess;
use crate::context_ops::ContextOps;
use crate::failure::{FailureReason, RestartStatistics};
use crate::message::{Message, MessageEnvelope, MessageHeader};
use crate::pid::Pid;
use crate::process::SystemMessage;
use crate::props::{send_through, validate_name, Props, SpawnError};
use crate::registry::with_joined;
use crate::spawn::spawn;
use crate::system::ActorSystem;

use receive_timeout::TimeoutTimer;

type PidSet = IndexSet<Pid, foldhash::fast::RandomState>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Alive,
    Restarting,
    Stopping,
    Stopped,
}

enum Current {
    None,
    Owned(MessageEnvelope),
    /// Retained for `reenter_after` continuations.
    Slot(u64),
}

/// State most actors never need, allocated on first use (keeps idle actors small).
#[derive(Default)]
struct Extras {
    watchers: PidSet,
    stash: Vec<MessageEnvelope>,
    slots: HashMap<u64, (MessageEnvelope, usize)>,
    next_slot: u64,
    receive_timeout: Option<(Duration, Arc<TimeoutTimer>)>,
}

/// The context of an actor: its identity, the current message, and the operations of
/// Proto.Actor (send, request, respond, spawn, watch, stop, …).
pub struct Context {
    system: ActorSystem,
    props: Props,
    self_pid: Pid,
    parent: Option<Pid>,
    actor: Option<Box<dyn Actor>>,
    current: Current,
    state: State,
    extras: Option<Box<Extras>>,
    /// Allocated on the first spawn; a cell because spawning takes `&self` (the surface
    /// shared with the root context).
    children: OnceCell<Box<RefCell<PidSet>>>,
    restart_stats: OnceCell<RestartStatistics>,
    /// Boxed: rare, and an idle actor should stay small.
    pending_failure: Option<Box<FailureReason>>,
    /// This actor's process, marked dead at the start of the final stop (see `finalize_stop`).
    process: Weak<ActorProcess>,
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
    pub(crate) fn new(
        system: &ActorSystem,
        props: Props,
        pid: Pid,
        parent: Option<Pid>,
        process: Weak<ActorProcess>,
    ) -> Self {
        let actor = (props.0.producer)(system);
        Context {
            system: system.clone(),
            props,
            self_pid: pid,
            parent,
            actor: Some(actor),
            current: Current::None,
            state: State::Alive,
            extras: None,
            children: OnceCell::new(),
            restart_stats: OnceCell::new(),
            pending_failure: None,
            process,
        }
    }

    fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Default::default)
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
        self.children
            .get()
            .map(|c| c.borrow().iter().cloned().collect())
            .unwrap_or_default()
    }
    /// The actor instance (for example to downcast in middleware).
    pub fn actor(&self) -> Option<&dyn Actor> {
        self.actor.as_deref()
    }

    fn envelope(&self) -> Option<&MessageEnvelope> {
        match &self.current {
            Current::Owned(env) => Some(env),
            Current::Slot(id) => self
                .extras
                .as_ref()
                .and_then(|e| e.slots.get(id))
                .map(|(env, _)| env),
            Current::None => None,
        }
    }

    /// The current message (`()` outside message handling).
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
    /// Messages retained by `reenter_after` cannot be taken.
    pub fn take_message<T: Message>(&mut self) -> Option<T> {
        let Current::Owned(env) = &mut self.current else {
            return None;
        };
        if !env.message.is::<T>() {
            return None;
        }
        // Checked above: one more `type_id` call (in `downcast`), not two.
        let msg = std::mem::replace(&mut env.message, Box::new(()));
        let msg: Box<dyn std::any::Any> = msg;
        msg.downcast::<T>().ok().map(|b| *b)
    }
    /// The current message's header.
    pub fn header(&self) -> Option<&MessageHeader> {
        self.envelope().and_then(|e| e.header.as_deref())
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
                self.send(&s, message)
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
        match std::mem::replace(&mut self.current, Current::None) {
            Current::Owned(env) => {
                let placeholder = MessageEnvelope {
                    message: Box::new(()),
                    sender: env.sender.clone(),
                    header: env.header.clone(),
                };
                self.current = Current::Owned(placeholder);
                self.send_envelope(target, env);
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
        match std::mem::replace(&mut self.current, Current::None) {
            Current::Owned(env) => self.extras().stash.push(env),
            other => {
                self.current = other;
                tracing::warn!(pid = %self.self_pid, "stash: the current message cannot be stashed");
            }
        }
    }

    /// How many messages are stashed.
    pub fn stash_len(&self) -> usize {
        self.extras.as_ref().map_or(0, |e| e.stash.len())
    }

    /// Fails this actor without panicking: once the current `receive` returns, the failure
    /// goes to the supervisor exactly as a panic would.
    pub fn fail(&mut self, reason: FailureReason) {
        self.pending_failure = Some(Box::new(reason));
    }

    /// True once the final stop is done (the runner then finishes the process).
    pub(crate) fn is_stopped(&self) -> bool {
        self.state == State::Stopped
    }
}

impl ContextOps for Context {
    #[inline]
    fn system(&self) -> &ActorSystem {
        &self.system
    }

    #[inline]
    fn owner(&self) -> Option<&Pid> {
        Some(&self.self_pid)
    }

    /// Sends through this actor's sender middleware.
    #[inline]
    fn send_envelope(&self, target: &Pid, envelope: MessageEnvelope) {
        send_through(
            self.props.0.sender_chain.get(),
            &self.system,
            Some(&self.self_pid),
            target,
            envelope,
        )
    }

    fn spawn_named(&self, props: &Props, name: &str) -> Result<Pid, SpawnError> {
        validate_name(name)?;
        self.spawn_named_unvalidated(props, name)
    }
}

impl Context {
    /// Spawns a child named `name` even if the name contains `/`, for ids whose shape
    /// another system dictates: a cluster grain is named after its protoactor-go identity,
    /// which may contain `/` (`partition-activator/user/42$1`, as Go names it).
    ///
    /// Such a name can take the id a descendant of a sibling would get (`a/b` is also child
    /// `b` of child `a`, whose own spawn of `b` then fails with `NameExists`), which is why
    /// [`ContextOps::spawn_named`] refuses it; use this only where the caller owns the whole
    /// namespace under this actor (the cluster's activator spawns only grains, each named
    /// `<identity>$<n>`). An empty name is still refused.
    pub fn spawn_named_unvalidated(&self, props: &Props, name: &str) -> Result<Pid, SpawnError> {
        if name.is_empty() {
            return Err(SpawnError::InvalidName(String::new()));
        }
        if props.0.guardian.is_some() {
            return Err(SpawnError::GuardianOnChild);
        }
        let pid = with_joined(&[self.self_pid.id(), "/", name], |id| {
            match self.props.0.spawn_chain.get() {
                Some(chain) => chain(&self.system, id, props, Some(&self.self_pid)),
                None => spawn(&self.system, id, props, Some(&self.self_pid)),
            }
        })?;
        self.children
            .get_or_init(Default::default)
            .borrow_mut()
            .insert(pid.clone());
        Ok(pid)
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Context>();
    is_send::<crate::actor::FuncActor>();
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A detached context for unit tests of code that takes `&mut Context`.
    pub(crate) fn context(system: &ActorSystem) -> Context {
        let pid = system.new_local_pid("test");
        Context::new(system, Props::from_func(|_| {}), pid, None, Weak::new())
    }
}

#[cfg(test)]
mod tests {
    /// Spawn-heavy programs hold millions of idle contexts: state few actors use (children,
    /// stash, watchers, a pending failure) stays out of line.
    #[test]
    fn an_idle_context_stays_small() {
        // 144 before the children and the pending failure moved out of line
        let size = std::mem::size_of::<super::Context>();
        assert!(size <= 136, "Context grew to {size} bytes");
    }
}
