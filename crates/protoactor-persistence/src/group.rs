//! Group commit for the SQL providers: event writes that wait at the same time (of different
//! actors, each waiting for its own) are stored in one transaction, so that many actors
//! persisting one event each share a commit instead of paying one each. Each write is still
//! answered only after the transaction that holds it commits; if the group's transaction
//! fails, every write of the group is retried alone, so that each gets its own outcome (a
//! conflict of one does not fail the others).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

use crate::codec::Record;
use crate::error::PersistenceError;

/// At most this many events go into one group (the first write always does, whatever its size).
pub(crate) const MAX_GROUP_EVENTS: usize = 10_000;

/// One `persist_event(s)` call waiting for its commit.
pub(crate) struct PendingWrite {
    pub actor: String,
    pub first: u64,
    pub events: Vec<Record>,
    reply: oneshot::Sender<Result<(), PersistenceError>>,
}

/// Where the outcome of a [`PendingWrite`] arrives.
pub(crate) type Outcome = oneshot::Receiver<Result<(), PersistenceError>>;

impl PendingWrite {
    pub fn new(actor: &str, first: u64, events: Vec<Record>) -> (Self, Outcome) {
        let (reply, rx) = oneshot::channel();
        let w = Self {
            actor: actor.to_string(),
            first,
            events,
            reply,
        };
        (w, rx)
    }

    /// Answers the caller (who may have stopped waiting: then nobody hears it).
    pub fn reply(self, r: Result<(), PersistenceError>) {
        let _ = self.reply.send(r);
    }
}

/// Waits for the outcome of a queued write.
pub(crate) async fn outcome(rx: Outcome) -> Result<(), PersistenceError> {
    rx.await.unwrap_or_else(|_| {
        Err(PersistenceError::Storage(
            "the provider's writer stopped before the write was answered (was the runtime shut \
             down?); the write may or may not be stored"
                .into(),
        ))
    })
}

/// Takes the next group from the front of `pending`, in arrival order.
pub(crate) fn take_group(pending: &mut VecDeque<PendingWrite>) -> Vec<PendingWrite> {
    let mut group = Vec::new();
    let mut events = 0;
    while let Some(w) = pending.front() {
        if !group.is_empty() && events + w.events.len() > MAX_GROUP_EVENTS {
            break;
        }
        events += w.events.len();
        group.extend(pending.pop_front());
    }
    group
}

/// How a SQL provider's event writes were committed (see
/// [`SqliteProvider::write_stats`](crate::SqliteProvider::write_stats) and
/// [`PostgresProvider::write_stats`](crate::PostgresProvider::write_stats)): with many
/// actors writing at once, `commits` stays well below `writes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// `persist_event`/`persist_events` calls stored.
    pub writes: u64,
    /// Transactions that stored them.
    pub commits: u64,
}

/// The counters behind [`WriteStats`].
#[derive(Default)]
pub(crate) struct Counters {
    writes: AtomicU64,
    commits: AtomicU64,
}

impl Counters {
    /// One transaction stored `writes` writes.
    pub fn committed(&self, writes: usize) {
        self.writes.fetch_add(writes as u64, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> WriteStats {
        WriteStats {
            writes: self.writes.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
        }
    }
}
