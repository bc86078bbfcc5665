//! The SQLite provider: the embedded default, one file, no server.
//!
//! Tables (created if missing), readable by any SQLite client:
//!
//! ```sql
//! CREATE TABLE protoactor_events (actor_name TEXT, event_index INTEGER, type_name TEXT,
//!     payload BLOB, PRIMARY KEY (actor_name, event_index)) WITHOUT ROWID;
//! CREATE TABLE protoactor_snapshots (actor_name TEXT, snapshot_index INTEGER, type_name TEXT,
//!     payload BLOB, PRIMARY KEY (actor_name, snapshot_index)) WITHOUT ROWID;
//! ```
//!
//! `type_name` is the protobuf full name and `payload` the protobuf bytes. The primary key is
//! the optimistic concurrency check: a second writer of the same index gets
//! [`PersistenceError::Conflict`], across threads and processes alike.
//!
//! Durability: the file is in WAL mode with `synchronous=NORMAL`, so a committed write
//! survives the process being killed at any point; on an OS crash or power loss the last
//! commits may be rolled back (never torn). Calls run on tokio's blocking pool because
//! rusqlite is blocking; one connection is shared behind a mutex (SQLite writes serially anyway).
//!
//! Group commit: event writes that wait at the same time (many actors persisting at once)
//! are stored in one transaction by one blocking task, and each is answered after that
//! transaction commits; a group whose transaction fails is retried one write per transaction
//! so that each write gets its own outcome.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

use crate::codec::{Entry, Record};
use crate::error::{sql_index, stored_index, PersistenceError, RecordKind};
use crate::group::{outcome, take_group, Counters, PendingWrite, WriteStats};
use crate::provider::Provider;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS protoactor_events (
    actor_name  TEXT    NOT NULL,
    event_index INTEGER NOT NULL,
    type_name   TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    PRIMARY KEY (actor_name, event_index)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS protoactor_snapshots (
    actor_name     TEXT    NOT NULL,
    snapshot_index INTEGER NOT NULL,
    type_name      TEXT    NOT NULL,
    payload        BLOB    NOT NULL,
    PRIMARY KEY (actor_name, snapshot_index)
) WITHOUT ROWID;
";

/// Journals and snapshots in a SQLite file.
#[derive(Clone)]
pub struct SqliteProvider {
    /// For [`Provider::describe`].
    location: Arc<str>,
    conn: Arc<Mutex<Connection>>,
    writes: Arc<Mutex<WriteQueue>>,
}

/// Event writes waiting for a commit, and whether a task is writing them.
#[derive(Default)]
struct WriteQueue {
    pending: VecDeque<PendingWrite>,
    flushing: bool,
    counters: Arc<Counters>,
}

impl SqliteProvider {
    /// Opens (or creates) the database file and its tables.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, PersistenceError> {
        let path = path.as_ref();
        let conn = Connection::open(path).map_err(|e| {
            PersistenceError::Storage(format!("cannot open SQLite file {}: {e}", path.display()))
        })?;
        Self::init(conn, true, &format!("sqlite:{}", path.display())).map_err(|e| match e {
            PersistenceError::Storage(m) => {
                PersistenceError::Storage(format!("SQLite file {}: {m}", path.display()))
            }
            e => e,
        })
    }

    /// A private in-memory database (lost with the provider).
    pub fn open_in_memory() -> Result<Self, PersistenceError> {
        Self::init(
            Connection::open_in_memory().map_err(sqlite_err)?,
            false,
            "sqlite::memory:",
        )
    }

    fn init(conn: Connection, wal: bool, location: &str) -> Result<Self, PersistenceError> {
        // First of all: another connection (process) may hold a lock, e.g. while it creates
        // the tables; wait for it instead of failing at once with "database is locked".
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite_err)?;
        if wal {
            set_wal(&conn)?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(sqlite_err)?;
        }
        // `BEGIN IMMEDIATE` takes the write lock before reading the schema: a read lock
        // upgraded later gets SQLITE_BUSY without waiting (SQLite's deadlock rule).
        conn.execute_batch(&format!("BEGIN IMMEDIATE;{SCHEMA}COMMIT;"))
            .map_err(sqlite_err)?;
        Ok(Self {
            location: location.into(),
            conn: Arc::new(Mutex::new(conn)),
            writes: Default::default(),
        })
    }

    /// How this provider's event writes were committed (group commit at work).
    pub fn write_stats(&self) -> WriteStats {
        self.writes.lock().counters.get()
    }

    /// Runs `f` on the connection, on the blocking pool when inside a tokio runtime.
    async fn run<T, F>(&self, f: F) -> Result<T, PersistenceError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, PersistenceError> + Send + 'static,
    {
        let conn = self.conn.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(h) => h
                .spawn_blocking(move || f(&mut conn.lock()))
                .await
                .map_err(|e| PersistenceError::Storage(format!("SQLite task failed: {e}")))?,
            Err(_) => f(&mut conn.lock()),
        }
    }

    /// Runs a `DELETE` of one actor's rows with index `<= inclusive_to` (`sql` takes the
    /// actor as `?1` and the index as `?2`).
    async fn delete_through(
        &self,
        sql: &'static str,
        actor_name: &str,
        inclusive_to: u64,
    ) -> Result<(), PersistenceError> {
        let actor = actor_name.to_string();
        let to = i64::try_from(inclusive_to).unwrap_or(i64::MAX);
        self.run(move |c| {
            c.prepare_cached(sql)
                .map_err(sqlite_err)?
                .execute(params![actor, to])
                .map_err(sqlite_err)?;
            Ok(())
        })
        .await
    }
}

/// How long a connection waits for another one's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Switches the file to WAL mode. SQLite reads the header, then upgrades to a write lock
/// to change it, and an upgrade that meets another connection's lock fails at once without
/// calling the busy handler; so two processes opening a new file together need a retry
/// here (the retry finds the file already in WAL mode, or gets the lock).
fn set_wal(conn: &Connection) -> Result<(), PersistenceError> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                return Err(PersistenceError::Storage(format!(
                    "SQLite: cannot switch to WAL mode (journal_mode stays {mode:?})"
                )))
            }
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(sqlite_err(e)),
        }
    }
}

fn sqlite_err(e: rusqlite::Error) -> PersistenceError {
    PersistenceError::Storage(format!("SQLite: {e}"))
}

/// Inserts `events` at `first_index…` in the current transaction of `conn`.
fn insert_rows(
    conn: &Connection,
    actor: &str,
    first_index: u64,
    events: &[Record],
) -> Result<(), PersistenceError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO protoactor_events (actor_name, event_index, type_name, payload) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(sqlite_err)?;
    for (offset, e) in events.iter().enumerate() {
        let index = first_index
            .checked_add(offset as u64)
            .ok_or(PersistenceError::IndexOutOfRange(first_index))?;
        let i = sql_index(index)?;
        if let Err(err) = stmt.execute(params![actor, i, e.type_name, e.payload]) {
            return Err(if is_key_violation(&err) {
                PersistenceError::Conflict {
                    actor: actor.to_string(),
                    index,
                }
            } else {
                sqlite_err(err)
            });
        }
    }
    Ok(())
}

/// One write in its own transaction: all its events or none.
fn insert_events(
    conn: &mut Connection,
    actor: &str,
    first_index: u64,
    events: &[Record],
) -> Result<(), PersistenceError> {
    let tx = conn.transaction().map_err(sqlite_err)?;
    // On error, dropping the transaction rolls back what this write inserted.
    insert_rows(&tx, actor, first_index, events)?;
    tx.commit().map_err(sqlite_err)
}

/// Several writes in one transaction: all of them or none.
fn insert_group(conn: &mut Connection, group: &[PendingWrite]) -> Result<(), PersistenceError> {
    let tx = conn.transaction().map_err(sqlite_err)?;
    for w in group {
        insert_rows(&tx, &w.actor, w.first, &w.events)?;
    }
    tx.commit().map_err(sqlite_err)
}

/// Stores one group and answers its writes (see the module docs).
fn write_group(conn: &mut Connection, group: Vec<PendingWrite>, counters: &Counters) {
    if group.len() > 1 && insert_group(conn, &group).is_ok() {
        counters.committed(group.len());
        for w in group {
            w.reply(Ok(()));
        }
        return;
    }
    for w in group {
        let r = insert_events(conn, &w.actor, w.first, &w.events);
        if r.is_ok() {
            counters.committed(1);
        }
        w.reply(r);
    }
}

/// Writes groups until the queue is empty (on the blocking pool, one flusher at a time).
struct Flusher {
    conn: Arc<Mutex<Connection>>,
    writes: Arc<Mutex<WriteQueue>>,
    done: bool,
}

impl Flusher {
    fn run(mut self) {
        let counters = self.writes.lock().counters.clone();
        loop {
            let group = {
                let mut q = self.writes.lock();
                if q.pending.is_empty() {
                    q.flushing = false;
                    self.done = true;
                    return;
                }
                take_group(&mut q.pending)
            };
            write_group(&mut self.conn.lock(), group, &counters);
        }
    }
}

impl Drop for Flusher {
    /// A flusher that panicked, or never ran (its runtime shut down first), must not leave
    /// the queue waiting for it: the waiting writes are dropped, which answers them with an
    /// error, and the next write starts a new flusher.
    fn drop(&mut self) {
        if !self.done {
            let mut q = self.writes.lock();
            q.flushing = false;
            q.pending.clear();
        }
    }
}

/// Only the primary key means "index taken"; other constraint errors (a trigger's ABORT,
/// NOT NULL) are storage errors.
fn is_key_violation(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => {
            f.code == ErrorCode::ConstraintViolation
                && matches!(
                    f.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                        | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                )
        }
        _ => false,
    }
}

fn read_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, Vec<u8>)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn to_entry(
    actor: &str,
    kind: RecordKind,
    (i, type_name, payload): (i64, String, Vec<u8>),
) -> Result<Entry, PersistenceError> {
    Ok(Entry {
        index: stored_index(actor, kind, i)?,
        record: Record { type_name, payload },
    })
}

#[async_trait]
impl Provider for SqliteProvider {
    fn describe(&self) -> String {
        self.location.to_string()
    }

    async fn get_snapshot(&self, actor_name: &str) -> Result<Option<Entry>, PersistenceError> {
        let actor = actor_name.to_string();
        self.run(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT snapshot_index, type_name, payload FROM protoactor_snapshots \
                     WHERE actor_name = ?1 ORDER BY snapshot_index DESC LIMIT 1",
                )
                .map_err(sqlite_err)?
                .query_row(params![actor], read_entry)
                .optional()
                .map_err(sqlite_err)?;
            row.map(|r| to_entry(&actor, RecordKind::Snapshot, r))
                .transpose()
        })
        .await
    }

    async fn persist_snapshot(
        &self,
        actor_name: &str,
        index: u64,
        snapshot: Record,
    ) -> Result<(), PersistenceError> {
        let actor = actor_name.to_string();
        let i = sql_index(index)?;
        self.run(move |c| {
            // One statement: the check and the insert see the same journal.
            let stored = c
                .prepare_cached(
                    "INSERT INTO protoactor_snapshots \
                     (actor_name, snapshot_index, type_name, payload) \
                     SELECT ?1, ?2, ?3, ?4 WHERE ?2 <= (SELECT max(\
                       coalesce((SELECT max(event_index) + 1 FROM protoactor_events \
                                 WHERE actor_name = ?1), 0), \
                       coalesce((SELECT max(snapshot_index) FROM protoactor_snapshots \
                                 WHERE actor_name = ?1), 0))) \
                     ON CONFLICT (actor_name, snapshot_index) \
                     DO UPDATE SET type_name = excluded.type_name, payload = excluded.payload",
                )
                .map_err(sqlite_err)?
                .execute(params![actor, i, snapshot.type_name, snapshot.payload])
                .map_err(sqlite_err)?;
            if stored == 1 {
                return Ok(());
            }
            let journal_end: i64 = c
                .query_row(
                    "SELECT max(\
                       coalesce((SELECT max(event_index) + 1 FROM protoactor_events \
                                 WHERE actor_name = ?1), 0), \
                       coalesce((SELECT max(snapshot_index) FROM protoactor_snapshots \
                                 WHERE actor_name = ?1), 0))",
                    params![actor],
                    |r| r.get(0),
                )
                .map_err(sqlite_err)?;
            Err(PersistenceError::SnapshotBeyondJournal {
                actor,
                index,
                journal_end: journal_end.max(0) as u64,
            })
        })
        .await
    }

    async fn delete_snapshots(
        &self,
        actor_name: &str,
        inclusive_to: u64,
    ) -> Result<(), PersistenceError> {
        self.delete_through(
            "DELETE FROM protoactor_snapshots WHERE actor_name = ?1 AND snapshot_index <= ?2",
            actor_name,
            inclusive_to,
        )
        .await
    }

    async fn get_events(
        &self,
        actor_name: &str,
        from_index: u64,
        max_count: usize,
    ) -> Result<Vec<Entry>, PersistenceError> {
        let actor = actor_name.to_string();
        let from = match i64::try_from(from_index) {
            // From the start: rows with a negative index (damaged) are read too, and refused.
            Ok(0) => i64::MIN,
            Ok(from) => from,
            Err(_) => return Ok(Vec::new()),
        };
        let limit = i64::try_from(max_count).unwrap_or(i64::MAX);
        self.run(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT event_index, type_name, payload FROM protoactor_events \
                     WHERE actor_name = ?1 AND event_index >= ?2 ORDER BY event_index LIMIT ?3",
                )
                .map_err(sqlite_err)?;
            let rows = stmt
                .query_map(params![actor, from, limit], read_entry)
                .map_err(sqlite_err)?;
            let mut out = Vec::new();
            for r in rows {
                out.push(to_entry(&actor, RecordKind::Event, r.map_err(sqlite_err)?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn persist_events(
        &self,
        actor_name: &str,
        first_index: u64,
        events: Vec<Record>,
    ) -> Result<(), PersistenceError> {
        if events.is_empty() {
            return Ok(());
        }
        let (write, rx) = PendingWrite::new(actor_name, first_index, events);
        let start = {
            let mut q = self.writes.lock();
            q.pending.push_back(write);
            !std::mem::replace(&mut q.flushing, true)
        };
        if start {
            // The writes that queue up while this task writes form the next group.
            let flusher = Flusher {
                conn: self.conn.clone(),
                writes: self.writes.clone(),
                done: false,
            };
            // Its own thread, not tokio's blocking pool: actors waiting for their writes
            // hold pool threads (`block_in_place`), and with 512 of them (the pool's limit,
            // e.g. 1,000 `Persistence::props` actors writing at once) a write queued on the pool would
            // never run.
            let flusher = std::sync::Arc::new(parking_lot::Mutex::new(Some(flusher)));
            let spawned = {
                let f = flusher.clone();
                std::thread::Builder::new()
                    .name("sqlite-writer".into())
                    .spawn(move || {
                        if let Some(f) = f.lock().take() {
                            f.run()
                        }
                    })
            };
            if spawned.is_err() {
                if let Some(f) = flusher.lock().take() {
                    f.run();
                }
            }
        }
        outcome(rx).await
    }

    async fn delete_events(
        &self,
        actor_name: &str,
        inclusive_to: u64,
    ) -> Result<(), PersistenceError> {
        self.delete_through(
            "DELETE FROM protoactor_events WHERE actor_name = ?1 AND event_index <= ?2",
            actor_name,
            inclusive_to,
        )
        .await
    }
}
