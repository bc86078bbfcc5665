//! The process abstraction: anything a PID can point at.

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;

use crate::failure::Failure;
use crate::message::{BoxedMessage, MessageEnvelope, Terminated};
use crate::pid::{Pid, Resolved};

/// Something that can receive messages through a [`Pid`]: an actor's mailbox, a future,
/// a router, the dead-letter process, or a remote endpoint.
pub trait Process: std::any::Any + Send + Sync {
    /// Delivers a user message.
    fn send_user_message(&self, pid: &Pid, envelope: MessageEnvelope);
    /// Delivers a system message.
    fn send_system_message(&self, pid: &Pid, message: SystemMessage);
    /// Asks the process to stop.
    fn stop(&self, pid: &Pid) {
        self.send_system_message(pid, SystemMessage::Stop);
    }
    /// One line describing the process for diagnostics (the remote `GetProcessDiagnostics`
    /// RPC): what it is and its state.
    fn diagnostics(&self) -> String {
        String::from("process")
    }
    /// True once the process is gone, so cached PIDs resolve again.
    fn is_dead(&self) -> bool {
        false
    }
    /// Called when the actor behind this process begins its final stop, after it left the
    /// registry: from then on sends go to dead letters. Other processes ignore it.
    fn mark_dead(&self, _pid: &Pid) {}
    /// Runs `hook` once this process has its one response (futures do, so middleware can
    /// follow a request/response pair); any other process hands the hook back.
    fn on_completion(&self, hook: CompletionHook) -> Result<(), CompletionHook> {
        Err(hook)
    }
}

// The PID's cache of its process is typed here, not in `pid.rs` (see `pid::Resolved`).

/// The one concrete process type a registry caches in PIDs as itself (the actors'; see
/// `pid::Resolved`), and how to read it back as a [`Process`]. Every other process is
/// cached as an `Arc<dyn Process>` in an `Arc`.
#[derive(Clone, Copy)]
pub(crate) struct ProcessType {
    id: TypeId,
    /// The process `r` holds if it is of this type and not dead: the dead check inside,
    /// where `P::is_dead` is a direct (inlined) call, not one more through the vtable.
    live: for<'a> fn(&'a Resolved) -> Option<&'a dyn Process>,
    shared: fn(&Resolved) -> Option<Arc<dyn Process>>,
}

impl ProcessType {
    pub(crate) fn of<P: Process>() -> Self {
        ProcessType {
            id: TypeId::of::<P>(),
            live: |r| {
                r.downcast_ref::<P>()
                    .filter(|p| !p.is_dead())
                    .map(|p| p as &dyn Process)
            },
            shared: |r| {
                r.clone()
                    .downcast::<P>()
                    .ok()
                    .map(|p| p as Arc<dyn Process>)
            },
        }
    }

    /// True if `P` is this type.
    pub(crate) fn is<P: Process>(&self) -> bool {
        self.id == TypeId::of::<P>()
    }

    /// The process `r` holds, cached as this type or boxed, unless it is dead.
    #[inline]
    pub(crate) fn live<'a>(this: Option<&Self>, r: &'a Resolved) -> Option<&'a dyn Process> {
        if let Some(t) = this {
            if let Some(p) = (t.live)(r) {
                return Some(p);
            }
        }
        r.downcast_ref::<Arc<dyn Process>>()
            .map(|p| &**p)
            .filter(|p| !p.is_dead())
    }

    /// The process `r` holds, as an `Arc` of its own.
    pub(crate) fn shared(this: Option<&Self>, r: &Resolved) -> Option<Arc<dyn Process>> {
        if let Some(p) = this.and_then(|t| (t.shared)(r)) {
            return Some(p);
        }
        r.downcast_ref::<Arc<dyn Process>>().cloned()
    }
}

impl Pid {
    /// Caches `process` (of any type) in this PID for the registry with `registry_serial`.
    pub(crate) fn cache_process(&self, registry_serial: u64, process: Arc<dyn Process>) {
        self.set_resolved(registry_serial, Arc::new(process));
    }
}

/// Called once when a future completes: with `None` on a response, with the error's text
/// on a timeout, a dead letter or a future dropped unanswered.
pub type CompletionHook = Box<dyn FnOnce(Option<&str>) + Send>;

/// Messages that control an actor; they bypass suspension and are always processed before
/// user messages.
pub enum SystemMessage {
    /// The actor was (re)started.
    Started,
    /// Stop at once.
    Stop,
    /// Restart (sent by a supervisor).
    Restart,
    /// `watcher` wants a [`Terminated`] when this actor is gone.
    Watch {
        /// Who is watching.
        watcher: Pid,
    },
    /// `watcher` no longer watches.
    Unwatch {
        /// Who was watching.
        watcher: Pid,
    },
    /// A watched actor or a child is gone.
    Terminated(Terminated),
    /// A child failed (sent to the supervisor). Boxed: rare, and every mailbox holds one
    /// system message inline, so this enum's size is paid by every idle actor.
    Failure(Box<Failure>),
    /// Suspend user message processing (mailbox-internal).
    SuspendMailbox,
    /// Resume user message processing (mailbox-internal).
    ResumeMailbox,
    /// Resume a `reenter_after` continuation inside the actor. Boxed, as `Failure`: the
    /// largest variant left, `Terminated`, makes the enum 16 bytes.
    Continuation(Box<Continuation>),
}

impl SystemMessage {
    /// A short name, for logs and dead letters.
    pub fn name(&self) -> &'static str {
        match self {
            SystemMessage::Started => "Started",
            SystemMessage::Stop => "Stop",
            SystemMessage::Restart => "Restart",
            SystemMessage::Watch { .. } => "Watch",
            SystemMessage::Unwatch { .. } => "Unwatch",
            SystemMessage::Terminated(_) => "Terminated",
            SystemMessage::Failure(_) => "Failure",
            SystemMessage::SuspendMailbox => "SuspendMailbox",
            SystemMessage::ResumeMailbox => "ResumeMailbox",
            SystemMessage::Continuation(_) => "Continuation",
        }
    }

    /// The user-visible form of this system message, where it has one (used by futures,
    /// which complete with e.g. `Terminated`).
    pub fn into_user_message(self) -> Option<BoxedMessage> {
        match self {
            SystemMessage::Terminated(t) => Some(Box::new(t)),
            SystemMessage::Stop => Some(Box::new(crate::message::Stop)),
            SystemMessage::Started => Some(Box::new(crate::message::Started)),
            _ => None,
        }
    }
}

impl fmt::Debug for SystemMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SystemMessage::Watch { watcher } => write!(f, "Watch({watcher})"),
            SystemMessage::Unwatch { watcher } => write!(f, "Unwatch({watcher})"),
            SystemMessage::Terminated(t) => write!(f, "{t:?}"),
            SystemMessage::Failure(x) => write!(f, "{x:?}"),
            other => f.write_str(other.name()),
        }
    }
}

/// A `reenter_after` continuation: runs inside the actor with the original message restored.
///
/// The closure is opaque here (the context layer, above this one, gives it its type), so
/// the process layer does not depend on actors and contexts.
pub struct Continuation {
    pub(crate) slot: u64,
    pub(crate) f: Box<dyn std::any::Any + Send>,
}

impl fmt::Debug for Continuation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Continuation({})", self.slot)
    }
}

#[cfg(test)]
mod tests {
    /// Every mailbox holds one system message inline, so its size is paid by every idle
    /// actor: the rare large variants (`Failure`, `Continuation`) are boxed.
    #[test]
    fn a_system_message_is_two_words() {
        let size = std::mem::size_of::<super::SystemMessage>();
        assert!(size <= 16, "SystemMessage grew to {size} bytes");
    }
}
