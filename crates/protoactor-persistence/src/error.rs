//! Errors of persistence operations.

use std::fmt;

/// Which kind of stored record an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// An event of the journal.
    Event,
    /// A snapshot.
    Snapshot,
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordKind::Event => "event",
            RecordKind::Snapshot => "snapshot",
        })
    }
}

/// Why a stored payload could not be turned back into a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The stored type name is none of the types the actor accepts.
    #[error("unknown type {found:?} (expected one of {expected:?})")]
    UnknownType {
        /// The type name found in storage.
        found: String,
        /// The protobuf full names the actor accepts.
        expected: Vec<String>,
    },
    /// The type is known but the bytes are not a valid encoding of it.
    #[error("malformed protobuf payload for {type_name:?}: {reason}")]
    Malformed {
        /// The type name found in storage.
        type_name: String,
        /// The decoder's message.
        reason: String,
    },
}

/// The error of every persistence operation.
///
/// Persistent actors send recovery errors to their supervisor (as a failure whose
/// [`FailureReason`](protoactor::FailureReason) carries this value, see
/// [`FailureReason::is`](protoactor::FailureReason::is)); `persist_*` calls return them, and
/// the requester of a command whose event could not be stored receives one as the reply
/// (see [`Journal::persist_event`](crate::Journal::persist_event)).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PersistenceError {
    /// Another writer already stored an event at this index for this actor name: two
    /// incarnations write the same journal (optimistic concurrency check).
    #[error("conflict: actor {actor:?} already has an event at index {index} (another writer for the same actor name?)")]
    Conflict {
        /// The actor (persistence) name.
        actor: String,
        /// The index that was taken.
        index: u64,
    },
    /// A stored event or snapshot could not be decoded (unknown type or corrupt bytes).
    #[error("corrupt {kind} {index} of actor {actor:?}: {source}")]
    Corrupt {
        /// The actor (persistence) name.
        actor: String,
        /// Event or snapshot.
        kind: RecordKind,
        /// Its index.
        index: u64,
        /// What is wrong with it.
        #[source]
        source: DecodeError,
    },
    /// The storage failed (I/O, connection, SQL, bad schema…); the operation did not happen,
    /// or for a write whose reply was lost, may have happened.
    #[error("storage error: {0}")]
    Storage(String),
    /// A stored row has an index no writer of this crate produces (a negative one): the row
    /// was damaged or written by another program. Reading the journal fails rather than
    /// skipping the row.
    #[error("invalid {kind} index {index} of actor {actor:?} in storage (indexes start at 0: a damaged row?)")]
    InvalidIndex {
        /// The actor (persistence) name.
        actor: String,
        /// Event or snapshot.
        kind: RecordKind,
        /// The stored index.
        index: i64,
    },
    /// A snapshot claims more events than the journal has: a snapshot at `index` covers the
    /// events `0..index`, but the journal ends at `journal_end` (its last event's index + 1,
    /// or a later snapshot's index when the events it covers were deleted). Refused when
    /// stored; found in storage, it fails recovery.
    #[error("snapshot at index {index} of actor {actor:?} is beyond its journal, which ends at {journal_end}")]
    SnapshotBeyondJournal {
        /// The actor (persistence) name.
        actor: String,
        /// The snapshot's index.
        index: u64,
        /// Where the journal ends.
        journal_end: u64,
    },
    /// An index does not fit the storage (SQL databases keep signed 64-bit indexes).
    #[error("index {0} is out of the storable range (0..=i64::MAX)")]
    IndexOutOfRange(u64),
    /// The journal refuses writes after a failed one, until the actor restarts and recovers
    /// (its in-memory state may no longer match the log).
    #[error("journal of actor {0:?} is broken by an earlier failed write; fail the actor so that it recovers")]
    Broken(String),
    /// Blocking on storage is impossible here (e.g. on a current-thread tokio runtime).
    #[error("cannot wait for storage here: {0}")]
    Runtime(String),
}

impl PersistenceError {
    /// A storage error from any displayable cause.
    pub fn storage(e: impl fmt::Display) -> Self {
        PersistenceError::Storage(e.to_string())
    }
}

impl From<PersistenceError> for protoactor::FailureReason {
    fn from(e: PersistenceError) -> Self {
        protoactor::FailureReason::from_value(e)
    }
}

/// Converts an index to the signed form SQL databases store.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn sql_index(index: u64) -> Result<i64, PersistenceError> {
    i64::try_from(index).map_err(|_| PersistenceError::IndexOutOfRange(index))
}

/// Converts a stored signed index back, refusing negative values (a damaged row).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn stored_index(
    actor: &str,
    kind: RecordKind,
    index: i64,
) -> Result<u64, PersistenceError> {
    u64::try_from(index).map_err(|_| PersistenceError::InvalidIndex {
        actor: actor.to_string(),
        kind,
        index,
    })
}
