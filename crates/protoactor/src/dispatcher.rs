//! Dispatchers: where mailboxes run.

use crate::system::ActorSystem;

/// The default number of messages a mailbox processes before yielding its thread.
pub const DEFAULT_THROUGHPUT: usize = 300;

#[derive(Clone)]
enum Kind {
    System,
    Runtime(tokio::runtime::Handle),
    Synchronized,
}

/// Where an actor's mailbox runs and how many messages it processes per turn.
///
/// - [`Dispatcher::new`]: the actor system's tokio runtime (the default, throughput 300).
/// - [`Dispatcher::on_runtime`]: another tokio runtime (e.g. one reserved for slow actors).
/// - [`Dispatcher::synchronized`]: on the sender's thread, for deterministic tests.
#[derive(Clone)]
pub struct Dispatcher {
    kind: Kind,
    throughput: usize,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = match self.kind {
            Kind::System => "system",
            Kind::Runtime(_) => "runtime",
            Kind::Synchronized => "synchronized",
        };
        write!(f, "Dispatcher({k}, throughput {})", self.throughput)
    }
}

impl Default for Dispatcher {
    fn default() -> Self {
        Self::new(DEFAULT_THROUGHPUT)
    }
}

impl Dispatcher {
    /// Runs on the actor system's runtime, `throughput` messages per turn.
    pub fn new(throughput: usize) -> Self {
        Self {
            kind: Kind::System,
            throughput: throughput.max(1),
        }
    }
    /// Runs on the given tokio runtime.
    pub fn on_runtime(handle: tokio::runtime::Handle, throughput: usize) -> Self {
        Self {
            kind: Kind::Runtime(handle),
            throughput: throughput.max(1),
        }
    }
    /// Runs each mailbox on the thread that sends to it (no concurrency; for tests).
    pub fn synchronized(throughput: usize) -> Self {
        Self {
            kind: Kind::Synchronized,
            throughput: throughput.max(1),
        }
    }
    /// Messages per turn.
    pub fn throughput(&self) -> usize {
        self.throughput
    }
    pub(crate) fn is_synchronized(&self) -> bool {
        matches!(self.kind, Kind::Synchronized)
    }
    pub(crate) fn handle(&self, system: &ActorSystem) -> tokio::runtime::Handle {
        match &self.kind {
            Kind::Runtime(h) => h.clone(),
            _ => system.runtime().clone(),
        }
    }
}
