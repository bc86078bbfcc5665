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
//! One connection is shared by every actor using the provider; requests are pipelined on it.
//! Its driver task runs on the tokio runtime that called [`PostgresProvider::connect`] (usually
//! the actor system's). A lost connection is not re-established: calls then fail with
//! [`PersistenceError::Storage`].

use async_trait::async_trait;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement};

use crate::codec::{Entry, Record};
use crate::error::{sql_index, stored_index, PersistenceError, RecordKind};
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
    client: Client,
    insert_event: Statement,
    insert_events: Statement,
    select_events: Statement,
    first_taken: Statement,
    insert_snapshot: Statement,
    journal_end: Statement,
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

impl PostgresProvider {
    /// Connects (e.g. `postgres://user@127.0.0.1:5432/db` or `host=/run/postgresql user=…`),
    /// creates the tables if needed and prepares the statements. Must run inside a tokio
    /// runtime, which then drives the connection.
    pub async fn connect(url: &str) -> Result<Self, PersistenceError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| PersistenceError::Storage(format!("cannot connect to PostgreSQL: {e}")))?;
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
        Ok(Self {
            client,
            insert_event,
            insert_events,
            select_events,
            first_taken,
            insert_snapshot,
            journal_end,
        })
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
        let to = i64::try_from(inclusive_to).unwrap_or(i64::MAX);
        self.client
            .execute(
                "DELETE FROM protoactor_snapshots WHERE actor_name = $1 AND snapshot_index <= $2",
                &[&actor_name, &to],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
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

    async fn persist_event(
        &self,
        actor_name: &str,
        index: u64,
        event: Record,
    ) -> Result<(), PersistenceError> {
        let i = sql_index(index)?;
        match self
            .client
            .execute(
                &self.insert_event,
                &[&actor_name, &i, &event.type_name, &event.payload],
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(self.insert_error(e, actor_name, i, 1).await),
        }
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
        let first = sql_index(first_index)?;
        let n = events.len() as u64;
        sql_index(first_index.saturating_add(n))?;
        let indexes: Vec<i64> = (first..).take(events.len()).collect();
        let (types, payloads): (Vec<String>, Vec<Vec<u8>>) =
            events.into_iter().map(|r| (r.type_name, r.payload)).unzip();
        match self
            .client
            .execute(
                &self.insert_events,
                &[&actor_name, &indexes, &types, &payloads],
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(self.insert_error(e, actor_name, first, n as i64).await),
        }
    }

    async fn delete_events(
        &self,
        actor_name: &str,
        inclusive_to: u64,
    ) -> Result<(), PersistenceError> {
        let to = i64::try_from(inclusive_to).unwrap_or(i64::MAX);
        self.client
            .execute(
                "DELETE FROM protoactor_events WHERE actor_name = $1 AND event_index <= $2",
                &[&actor_name, &to],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }
}
