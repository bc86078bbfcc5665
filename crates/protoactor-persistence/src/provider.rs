//! The storage interface persistent actors use.

use async_trait::async_trait;

use crate::codec::{Entry, Record};
use crate::error::PersistenceError;

/// Storage for event journals and snapshots, keyed by actor (persistence) name.
///
/// Methods are async so that a network database does not hold a thread while it waits;
/// providers whose storage is blocking (SQLite) run it on tokio's blocking pool. A persistent
/// actor waits for each call before it handles its next message (see the crate docs).
///
/// Contract, which the shared test suite checks for every provider:
/// - events of one actor have unique indexes: storing an index that is taken fails with
///   [`PersistenceError::Conflict`] and changes nothing (optimistic concurrency);
/// - an `Ok` write is stored (and survives the process, for durable providers); an `Err`
///   write is not reported as stored;
/// - reads return entries in ascending index order;
/// - a snapshot beyond the journal's end (its last event's index + 1, or its latest
///   snapshot's index when later) is refused with [`PersistenceError::SnapshotBeyondJournal`].
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// What the storage is, for logs and error messages (`"sqlite:/var/lib/app.db"`,
    /// `"postgres:db@host:5432"`, `"in-memory"`); never a password.
    fn describe(&self) -> String {
        std::any::type_name::<Self>().to_string()
    }

    /// The snapshot with the highest index, if any.
    async fn get_snapshot(&self, actor_name: &str) -> Result<Option<Entry>, PersistenceError>;

    /// Stores a snapshot taken after `index` events; replaces one at the same index.
    /// [`PersistenceError::SnapshotBeyondJournal`] if the journal has fewer events.
    async fn persist_snapshot(
        &self,
        actor_name: &str,
        index: u64,
        snapshot: Record,
    ) -> Result<(), PersistenceError>;

    /// Deletes the snapshots with index `<= inclusive_to`.
    async fn delete_snapshots(
        &self,
        actor_name: &str,
        inclusive_to: u64,
    ) -> Result<(), PersistenceError>;

    /// Up to `max_count` events with index `>= from_index`, in index order.
    async fn get_events(
        &self,
        actor_name: &str,
        from_index: u64,
        max_count: usize,
    ) -> Result<Vec<Entry>, PersistenceError>;

    /// Stores one event at `index`; [`PersistenceError::Conflict`] if the index is taken.
    /// The default is [`persist_events`](Self::persist_events) with that one event.
    async fn persist_event(
        &self,
        actor_name: &str,
        index: u64,
        event: Record,
    ) -> Result<(), PersistenceError> {
        self.persist_events(actor_name, index, vec![event]).await
    }

    /// Stores events at `first_index`, `first_index + 1`, …, all or none.
    async fn persist_events(
        &self,
        actor_name: &str,
        first_index: u64,
        events: Vec<Record>,
    ) -> Result<(), PersistenceError>;

    /// Stores one event at `index` from borrowed parts, at once, when this provider can
    /// write without waiting (the in-memory provider): no record, no future, no runtime.
    /// Same contract as [`persist_event`](Self::persist_event). `None` (the default): the
    /// provider cannot, and the caller calls `persist_event`.
    fn persist_event_now(
        &self,
        actor_name: &str,
        index: u64,
        type_name: &str,
        payload: &[u8],
    ) -> Option<Result<(), PersistenceError>> {
        let _ = (actor_name, index, type_name, payload);
        None
    }

    /// Lends up to `max_count` events with index `>= from_index`, in index order, to
    /// `visit(index, type_name, payload)` without copying them, at once, when this provider
    /// can read without waiting (the in-memory provider: `visit` runs under its lock, so it
    /// must not call the provider). `visit` returns false to stop early. Returns how many
    /// events were lent. `None` (the default): the caller calls
    /// [`get_events`](Self::get_events).
    fn visit_events_now(
        &self,
        actor_name: &str,
        from_index: u64,
        max_count: usize,
        visit: &mut dyn FnMut(u64, &str, &[u8]) -> bool,
    ) -> Option<Result<usize, PersistenceError>> {
        let _ = (actor_name, from_index, max_count, visit);
        None
    }

    /// Deletes the events with index `<= inclusive_to`.
    async fn delete_events(
        &self,
        actor_name: &str,
        inclusive_to: u64,
    ) -> Result<(), PersistenceError>;
}
