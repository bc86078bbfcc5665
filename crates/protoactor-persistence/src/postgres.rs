//! The PostgreSQL provider, through `tokio-postgres` (no TLS: use it on loopback, a Unix
//! socket or a trusted network).
//!
//! Tables (created if missing):
//!
//! ```sql
//! CREATE TABLE protoactor_events (actor_name TEXT, event_index BIGINT, type_name TEXT,
//!     payload BYTEA, PRIMARY KEY (actor_name, event_index));
//! CREATE TABLE protoactor_snapshots (actor_name TEXT, snapshot_index BIGINT, type_name TEXT,
//!     payload BYTEA, PRIMARY KEY (actor_name, snapshot_index));
//! ```
//!
//! `type_name` is the protobuf full name and `payload` the protobuf bytes. The primary key is
//! the optimistic concurrency check ([`PersistenceError::Conflict`]). A batch of events is one
//! `INSERT … SELECT FROM UNNEST(…)` statement, so it is stored all or none.
//!
//! Group commit: event writes that wait at the same time (many actors persisting at once)
//! are stored by one `INSERT … SELECT FROM UNNEST(…)` statement, i.e. one transaction and one
//! durable commit, by a writer task; each is answered after that statement commits. A group
//! whose statement fails is retried one write per statement so that each write gets its own
//! outcome.
//!
//! One connection is shared by every actor using the provider; requests are pipelined on it.
//! Its driver task runs on the tokio runtime that called [`PostgresProvider::connect`] (usually
//! the actor system's). A lost connection is not re-established: calls then fail with
//! [`PersistenceError::Storage`].

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement};

use crate::codec::{Entry, Record};
use crate::error::{sql_index, stored_index, PersistenceError, RecordKind};
use crate::group::{outcome, Counters, PendingWrite, WriteStats, MAX_GROUP_EVENTS};
use crate::provider::Provider;

const SCHEMA: &str = "
BEGIN;
SELECT pg_advisory_xact_lock(7177130529);
CREATE TABLE IF NOT EXISTS protoactor_events (
    actor_name  TEXT   NOT NULL,
    event_index BIGINT NOT NULL,
    type_name   TEXT   NOT NULL,
    payload     BYTEA  NOT NULL,
    PRIMARY KEY (actor_name, event_index)
);
CREATE TABLE IF NOT EXISTS protoactor_snapshots (
    actor_name     TEXT   NOT NULL,
    snapshot_index BIGINT NOT NULL,
    type_name      TEXT   NOT NULL,
    payload        BYTEA  NOT NULL,
    PRIMARY KEY (actor_name, snapshot_index)
);
COMMIT;
";

/// Journals and snapshots in a PostgreSQL database.
pub struct PostgresProvider {
    /// For [`Provider::describe`]: the database and host, without credentials.
    location: String,
    client: Arc<Client>,
    writes: mpsc::UnboundedSender<PendingWrite>,
    counters: Arc<Counters>,
    select_events: Statement,
    insert_snapshot: Statement,
    journal_end: Statement,
}

/// The task that stores event writes, in groups (see the module docs).
struct Writer {
    client: Arc<Client>,
    insert_event: Statement,
    insert_events: Statement,
    insert_group: Statement,
    first_taken: Statement,
    counters: Arc<Counters>,
}

/// Where an actor's journal ends: its last event's index + 1, or its latest snapshot's index
/// if that is later (the events it covers were deleted).
const JOURNAL_END: &str = "GREATEST(\
    COALESCE((SELECT max(event_index) + 1 FROM protoactor_events WHERE actor_name = $1), 0), \
    COALESCE((SELECT max(snapshot_index) FROM protoactor_snapshots WHERE actor_name = $1), 0))";

fn pg_err(e: tokio_postgres::Error) -> PersistenceError {
    // The error's Display says only "db error"; the server's message is the useful part.
    match e.as_db_error() {
        Some(db) => PersistenceError::Storage(format!(
            "PostgreSQL: {} {}: {}",
            db.severity(),
            db.code().code(),
            db.message()
        )),
        None => PersistenceError::Storage(format!("PostgreSQL: {e}")),
    }
}

/// `postgres:<db>@<host>:<port>` from a connection string, without user or password.
fn describe_url(url: &str) -> String {
    let Ok(config) = url.parse::<tokio_postgres::Config>() else {
        return "postgres".into();
    };
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres:{}@{host}:{port}",
        config.get_dbname().unwrap_or("postgres")
    )
}

impl PostgresProvider {
    /// Connects (e.g. `postgres://user@127.0.0.1:5432/db` or `host=/run/postgresql user=…`),
    /// creates the tables if needed and prepares the statements. Must run inside a tokio
    /// runtime, which then drives the connection.
    pub async fn connect(url: &str) -> Result<Self, PersistenceError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(|e| {
            PersistenceError::Storage(format!(
                "cannot connect to PostgreSQL at {}: {e}",
                describe_url(url)
            ))
        })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!(error = %e, "PostgreSQL persistence connection closed");
            }
        });
        client.batch_execute(SCHEMA).await.map_err(pg_err)?;
        let insert_event = client
            .prepare(
                "INSERT INTO protoactor_events (actor_name, event_index, type_name, payload) \
                 VALUES ($1, $2, $3, $4)",
            )
            .await
            .map_err(pg_err)?;
        let insert_events = client
            .prepare(
                "INSERT INTO protoactor_events (actor_name, event_index, type_name, payload) \
                 SELECT $1, i, t, p FROM UNNEST($2::BIGINT[], $3::TEXT[], $4::BYTEA[]) AS u(i, t, p)",
            )
            .await
            .map_err(pg_err)?;
        let select_events = client
            .prepare(
                "SELECT event_index, type_name, payload FROM protoactor_events \
                 WHERE actor_name = $1 AND event_index >= $2 ORDER BY event_index LIMIT $3",
            )
            .await
            .map_err(pg_err)?;
        let insert_group = client
            .prepare(
                "INSERT INTO protoactor_events (actor_name, event_index, type_name, payload) \
                 SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::BYTEA[])",
            )
            .await
            .map_err(pg_err)?;
        let first_taken = client
            .prepare(
                "SELECT min(event_index) FROM protoactor_events \
                 WHERE actor_name = $1 AND event_index >= $2 AND event_index < $3",
            )
            .await
            .map_err(pg_err)?;
        let insert_snapshot = client
            .prepare(&format!(
                "INSERT INTO protoactor_snapshots (actor_name, snapshot_index, type_name, payload) \
                 SELECT $1::TEXT, $2::BIGINT, $3::TEXT, $4::BYTEA WHERE $2 <= {JOURNAL_END} \
                 ON CONFLICT (actor_name, snapshot_index) \
                 DO UPDATE SET type_name = EXCLUDED.type_name, payload = EXCLUDED.payload"
            ))
            .await
            .map_err(pg_err)?;
        let journal_end = client
            .prepare(&format!("SELECT {JOURNAL_END}"))
            .await
            .map_err(pg_err)?;
        let client = Arc::new(client);
        let (writes, queue) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            client: client.clone(),
            insert_event,
            insert_events,
            insert_group,
            first_taken,
            counters: counters.clone(),
        };
        // Ends when the provider (the queue's sender) is dropped.
        tokio::spawn(writer.run(queue));
        Ok(Self {
            location: describe_url(url),
            client,
            writes,
            counters,
            select_events,
            insert_snapshot,
            journal_end,
        })
    }

    /// How this provider's event writes were committed (group commit at work).
    pub fn write_stats(&self) -> WriteStats {
        self.counters.get()
    }

    /// Queues a write for the writer task and waits for its commit.
    async fn write(
        &self,
        actor_name: &str,
        first_index: u64,
        events: Vec<Record>,
    ) -> Result<(), PersistenceError> {
        if events.is_empty() {
            return Ok(());
        }
        sql_index(first_index)?;
        sql_index(first_index.saturating_add(events.len() as u64))?;
        let (write, rx) = PendingWrite::new(actor_name, first_index, events);
        if self.writes.send(write).is_err() {
            return Err(PersistenceError::Storage(
                "the PostgreSQL writer task has stopped (was its runtime shut down?)".into(),
            ));
        }
        outcome(rx).await
    }

    /// Runs a `DELETE` of one actor's rows with index `<= inclusive_to` (`sql` takes the
    /// actor as `$1` and the index as `$2`).
    async fn delete_through(
        &self,
        sql: &str,
        actor_name: &str,
        inclusive_to: u64,
    ) -> Result<(), PersistenceError> {
        let to = i64::try_from(inclusive_to).unwrap_or(i64::MAX);
        self.client
            .execute(sql, &[&actor_name, &to])
            .await
            .map_err(pg_err)?;
        Ok(())
    }
}

impl Writer {
    async fn run(self, mut queue: mpsc::UnboundedReceiver<PendingWrite>) {
        while let Some(first) = queue.recv().await {
            // Everything that queued up while the previous group was being written.
            let mut events = first.events.len();
            let mut group = vec![first];
            while events < MAX_GROUP_EVENTS {
                match queue.try_recv() {
                    Ok(w) => {
                        events += w.events.len();
                        group.push(w);
                    }
                    Err(_) => break,
                }
            }
            self.write_group(group).await;
        }
    }

    async fn write_group(&self, group: Vec<PendingWrite>) {
        if group.len() > 1 && self.insert_group(&group).await.is_ok() {
            self.counters.committed(group.len());
            for w in group {
                w.reply(Ok(()));
            }
            return;
        }
        for w in group {
            let r = self.insert_one(&w).await;
            if r.is_ok() {
                self.counters.committed(1);
            }
            w.reply(r);
        }
    }

    /// All the group's events in one statement (one transaction).
    async fn insert_group(&self, group: &[PendingWrite]) -> Result<(), tokio_postgres::Error> {
        let n: usize = group.iter().map(|w| w.events.len()).sum();
        let mut actors = Vec::with_capacity(n);
        let mut indexes = Vec::with_capacity(n);
        let mut types = Vec::with_capacity(n);
        let mut payloads = Vec::with_capacity(n);
        for w in group {
            // Indexes were checked to fit an i64 when the write was queued.
            for (i, e) in (w.first as i64..).zip(&w.events) {
                actors.push(w.actor.as_str());
                indexes.push(i);
                types.push(e.type_name.as_str());
                payloads.push(e.payload.as_slice());
            }
        }
        self.client
            .execute(&self.insert_group, &[&actors, &indexes, &types, &payloads])
            .await
            .map(|_| ())
    }

    /// One write alone, with its own error (a conflict at the first taken index).
    async fn insert_one(&self, w: &PendingWrite) -> Result<(), PersistenceError> {
        let first = w.first as i64;
        let n = w.events.len() as i64;
        let r = if let [e] = w.events.as_slice() {
            self.client
                .execute(
                    &self.insert_event,
                    &[&w.actor, &first, &e.type_name, &e.payload],
                )
                .await
        } else {
            let indexes: Vec<i64> = (first..first + n).collect();
            let types: Vec<&str> = w.events.iter().map(|e| e.type_name.as_str()).collect();
            let payloads: Vec<&[u8]> = w.events.iter().map(|e| e.payload.as_slice()).collect();
            self.client
                .execute(
                    &self.insert_events,
                    &[&w.actor, &indexes, &types, &payloads],
                )
                .await
        };
        match r {
            Ok(_) => Ok(()),
            Err(e) => Err(self.insert_error(e, &w.actor, first, n).await),
        }
    }

    /// Maps a failed insert of `[first, first+n)`: a unique violation is a conflict, reported
    /// at the first index that is taken.
    async fn insert_error(
        &self,
        e: tokio_postgres::Error,
        actor: &str,
        first: i64,
        n: i64,
    ) -> PersistenceError {
        if e.code() != Some(&SqlState::UNIQUE_VIOLATION) {
            return pg_err(e);
        }
        let taken: Option<i64> = self
            .client
            .query_one(
                &self.first_taken,
                &[&actor, &first, &(first.saturating_add(n))],
            )
            .await
            .ok()
            .and_then(|r| r.get(0));
        PersistenceError::Conflict {
            actor: actor.to_string(),
            index: taken.unwrap_or(first) as u64,
        }
    }
}

fn row_entry(
    actor: &str,
    kind: RecordKind,
    row: &tokio_postgres::Row,
) -> Result<Entry, PersistenceError> {
    let index: i64 = row.try_get(0).map_err(pg_err)?;
    Ok(Entry {
        index: stored_index(actor, kind, index)?,
        record: Record {
            type_name: row.try_get(1).map_err(pg_err)?,
            payload: row.try_get(2).map_err(pg_err)?,
        },
    })
}

#[async_trait]
impl Provider for PostgresProvider {
    fn describe(&self) -> String {
        self.location.clone()
    }

    async fn get_snapshot(&self, actor_name: &str) -> Result<Option<Entry>, PersistenceError> {
        let row = self
            .client
            .query_opt(
                "SELECT snapshot_index, type_name, payload FROM protoactor_snapshots \
                 WHERE actor_name = $1 ORDER BY snapshot_index DESC LIMIT 1",
                &[&actor_name],
            )
            .await
            .map_err(pg_err)?;
        row.as_ref()
            .map(|r| row_entry(actor_name, RecordKind::Snapshot, r))
            .transpose()
    }

    async fn persist_snapshot(
        &self,
        actor_name: &str,
        index: u64,
        snapshot: Record,
    ) -> Result<(), PersistenceError> {
        let i = sql_index(index)?;
        // One statement: the check and the insert see the same journal.
        let stored = self
            .client
            .execute(
                &self.insert_snapshot,
                &[&actor_name, &i, &snapshot.type_name, &snapshot.payload],
            )
            .await
            .map_err(pg_err)?;
        if stored == 1 {
            return Ok(());
        }
        let journal_end: i64 = self
            .client
            .query_one(&self.journal_end, &[&actor_name])
            .await
            .map_err(pg_err)?
            .try_get(0)
            .map_err(pg_err)?;
        Err(PersistenceError::SnapshotBeyondJournal {
            actor: actor_name.to_string(),
            index,
            journal_end: journal_end.max(0) as u64,
        })
    }

    async fn delete_snapshots(
        &self,
        actor_name: &str,
        inclusive_to: u64,
    ) -> Result<(), PersistenceError> {
        self.delete_through(
            "DELETE FROM protoactor_snapshots WHERE actor_name = $1 AND snapshot_index <= $2",
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
        let from = match i64::try_from(from_index) {
            // From the start: rows with a negative index (damaged) are read too, and refused.
            Ok(0) => i64::MIN,
            Ok(from) => from,
            Err(_) => return Ok(Vec::new()),
        };
        let limit = i64::try_from(max_count).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(&self.select_events, &[&actor_name, &from, &limit])
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| row_entry(actor_name, RecordKind::Event, r))
            .collect()
    }

    async fn persist_events(
        &self,
        actor_name: &str,
        first_index: u64,
        events: Vec<Record>,
    ) -> Result<(), PersistenceError> {
        self.write(actor_name, first_index, events).await
    }

    async fn delete_events(
        &self,
        actor_name: &str,
        inclusive_to: u64,
    ) -> Result<(), PersistenceError> {
        self.delete_through(
            "DELETE FROM protoactor_events WHERE actor_name = $1 AND event_index <= $2",
            actor_name,
            inclusive_to,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_described_without_user_or_password() {
        assert_eq!(
            describe_url("postgres://app:s3cret@db:5432/x"),
            "postgres:x@db:5432"
        );
        assert_eq!(describe_url("postgres://app@db/x"), "postgres:x@db:5432");
        assert_eq!(
            describe_url("host=db user=app password=s3cret dbname=x"),
            "postgres:x@db:5432"
        );
    }

    /// A server that cannot be reached is named in the error (password hidden).
    #[tokio::test]
    async fn a_failed_connect_names_the_server() {
        // Nothing listens on this port of the test range.
        let err = match PostgresProvider::connect("postgres://app:s3cret@127.0.0.1:42002/x").await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("connected to nothing"),
        };
        assert!(
            err.starts_with(
                "storage error: cannot connect to PostgreSQL at postgres:x@127.0.0.1:42002: "
            ),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
    }
}
