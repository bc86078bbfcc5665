//! Mailboxes: which queue an actor gets ([`MailboxConfig`]) and hooks into its life
//! ([`MailboxMiddleware`]).
//!
//! The queues are in `mailbox/queue.rs`, the idle/scheduled state in `mailbox/sched.rs`,
//! and the process that runs an actor from its mailbox in `actor_process.rs`.

mod queue;
pub(crate) mod sched;

use std::sync::Arc;

use crate::message::Message;

pub(crate) use queue::{Mailbox, UserQueue};

/// Hooks into a mailbox's life (statistics, tracing). All methods default to doing nothing.
pub trait MailboxMiddleware: Send + Sync + 'static {
    /// The mailbox started.
    fn mailbox_started(&self) {}
    /// A user message was posted (called on the sender's thread).
    fn message_posted(&self, _message: &dyn Message) {}
    /// A message is about to be processed (user messages only).
    fn message_received(&self, _message: &dyn Message) {}
    /// The mailbox ran out of messages.
    fn mailbox_empty(&self) {}
}

/// Chooses a priority level (0 lowest to 7 highest) for a message in a priority mailbox.
pub type PriorityFn = Arc<dyn Fn(&dyn Message) -> u8 + Send + Sync>;

/// The default priority level of a priority mailbox.
pub const DEFAULT_PRIORITY: u8 = 4;

#[derive(Clone)]
enum QueueKind {
    Unbounded,
    Bounded(usize),
    BoundedDropping(usize),
    Priority(PriorityFn),
}

/// Which mailbox an actor gets (set with [`Props::with_mailbox`](crate::Props::with_mailbox)).
///
/// ```
/// use protoactor::MailboxConfig;
/// let m = MailboxConfig::bounded(110);
/// let p = MailboxConfig::priority(|m| if m.is::<&str>() { 7 } else { 4 });
/// # let _ = (m, p);
/// ```
#[derive(Clone)]
pub struct MailboxConfig {
    kind: QueueKind,
    middleware: Vec<Arc<dyn MailboxMiddleware>>,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        Self::unbounded()
    }
}

impl std::fmt::Debug for MailboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = match &self.kind {
            QueueKind::Unbounded => "unbounded".to_string(),
            QueueKind::Bounded(n) => format!("bounded({n})"),
            QueueKind::BoundedDropping(n) => format!("bounded_dropping({n})"),
            QueueKind::Priority(_) => "priority".to_string(),
        };
        write!(f, "MailboxConfig({k})")
    }
}

impl MailboxConfig {
    /// An unbounded lock-free queue (the default).
    pub fn unbounded() -> Self {
        Self {
            kind: QueueKind::Unbounded,
            middleware: Vec::new(),
        }
    }
    /// A queue of `capacity`; a sender waits while it is full.
    pub fn bounded(capacity: usize) -> Self {
        Self {
            kind: QueueKind::Bounded(capacity.max(1)),
            middleware: Vec::new(),
        }
    }
    /// A queue of `capacity` that drops its oldest message (to dead letters) when full.
    pub fn bounded_dropping(capacity: usize) -> Self {
        Self {
            kind: QueueKind::BoundedDropping(capacity.max(1)),
            middleware: Vec::new(),
        }
    }
    /// An unbounded queue with 8 priority levels, highest first; `level` picks a message's
    /// level (values above 7 count as 7).
    pub fn priority<F>(level: F) -> Self
    where
        F: Fn(&dyn Message) -> u8 + Send + Sync + 'static,
    {
        Self {
            kind: QueueKind::Priority(Arc::new(level)),
            middleware: Vec::new(),
        }
    }
    /// Adds a mailbox middleware.
    pub fn with_middleware(mut self, middleware: impl MailboxMiddleware) -> Self {
        self.middleware.push(Arc::new(middleware));
        self
    }
}
