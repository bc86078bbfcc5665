//! Event sourcing and snapshots for Proto.Actor actors, on real storage: a counter that
//! survives restarts (stored in memory here; `SqliteProvider::open("counter.db")` keeps it in
//! a file):
//!
//! ```
//! use std::sync::Arc;
//! use protoactor::prelude::*;
//! use protoactor_persistence::{EventMeta, InMemoryProvider, Journal, Persistence, Persistent};
//!
//! #[derive(Clone, PartialEq, prost::Message)]
//! pub struct Added { #[prost(int64, tag = "1")] pub amount: i64 }
//! impl prost::Name for Added { const NAME: &'static str = "Added"; const PACKAGE: &'static str = "counter"; }
//! #[derive(Clone, PartialEq, prost::Message)]
//! pub struct Total { #[prost(int64, tag = "1")] pub value: i64 }
//! impl prost::Name for Total { const NAME: &'static str = "Total"; const PACKAGE: &'static str = "counter"; }
//!
//! #[derive(Default)]
//! struct Counter { value: i64 }
//! struct Add(i64);
//!
//! impl Persistent for Counter {
//!     type Event = Added;
//!     type Snapshot = Total;
//!     fn apply_event(&mut self, e: Added, _: EventMeta) { self.value += e.amount }
//!     fn apply_snapshot(&mut self, s: Total, _: u64) { self.value = s.value }
//!     fn snapshot(&self) -> Total { Total { value: self.value } }
//!     fn receive(&mut self, ctx: &mut Context, journal: &mut Journal<Self>) {
//!         if let Some(Add(n)) = ctx.message_as::<Add>() {
//!             let event = Added { amount: *n };
//!             match journal.persist_event(self, ctx, event) {
//!                 Ok(_) => ctx.respond(self.value),
//!                 Err(e) => ctx.fail(e.into()), // the supervisor restarts it; it recovers
//!             }
//!         }
//!     }
//! }
//!
//! let system = ActorSystem::new();
//! let props = Persistence::using(Arc::new(InMemoryProvider::new()))
//!     .with_snapshot_interval(100)
//!     .props(Counter::default);
//! let pid = system.root().spawn_named(&props, "counter-1").unwrap();
//! let value = system.root()
//!     .request_future(&pid, Add(5), std::time::Duration::from_secs(10))
//!     .result_as::<i64>()
//!     .unwrap();
//! assert_eq!(value, 5);
//! system.shutdown();
//! ```
//!
//! An actor implements [`Persistent`] (apply an event, apply a snapshot, take a snapshot,
//! handle commands) and is spawned with [`Persistence::props`]. Then:
//!
//! - on `Started` (first start and every restart) it **recovers**: the latest snapshot, then
//!   every event after it, in index order ([`EventMeta::recovering`] is true), before it sees
//!   `Started` and then [`ReplayComplete`];
//! - [`Journal::persist_event`] **stores an event, then applies it**, so state and log cannot
//!   diverge; a failed write is returned as an error and not applied;
//! - every `snapshot_interval` events a [`RequestSnapshot`] arrives and a snapshot is stored;
//! - a corrupt or unknown stored record, or any storage error during recovery, **fails the
//!   actor**: its supervisor gets a failure whose reason carries the [`PersistenceError`];
//! - two writers for the same persistence name are detected: the second write of an index
//!   fails with [`PersistenceError::Conflict`] (a unique `(actor_name, index)` key);
//! - the requester of a command whose write failed is answered: by the handler, or else with
//!   the [`PersistenceError`];
//! - a negative stored index or a snapshot beyond the journal's end is an error
//!   ([`PersistenceError::InvalidIndex`], [`PersistenceError::SnapshotBeyondJournal`]).
//!
//! Events and snapshots are protobuf messages ([`prost`]) stored as their protobuf full name
//! plus their bytes ([`Record`]), which a Go or C# system can decode.
//!
//! Providers ([`Provider`]): [`InMemoryProvider`], `SqliteProvider` (feature `sqlite`,
//! on by default: a file, no server) and `PostgresProvider` (feature `postgres`).
//!
//! # Threads
//!
//! `receive` is synchronous and runs on a worker of the actor system's multi-thread tokio
//! runtime. A persistent actor waits for each storage call before going on (event sourcing
//! needs the event stored before the next command), using `tokio::task::block_in_place` so
//! that the runtime's other tasks move to another thread meanwhile. Providers are async;
//! SQLite's blocking calls run on tokio's blocking pool. A persistent actor on a
//! current-thread runtime gets [`PersistenceError::Runtime`] instead of a stall.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `sqlite` | yes | `SqliteProvider`: a SQLite file, no server (SQLite is compiled in, `rusqlite`'s `bundled`) |
//! | `postgres` | no | `PostgresProvider`: a PostgreSQL server through `tokio-postgres` (plain TCP or Unix socket, no TLS) |
//!
//! [`InMemoryProvider`] is always there.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
//! # Layers
//!
//! The crate reads from the bottom up: a module names (`crate::module`) only modules of its
//! own layer or of lower ones, never in a cycle (`scripts/check-layers.sh`, run by CI).
//!
//! ```text
//!  0 records    error, codec
//!                 errors; events and snapshots as stored records
//!  1 storage    provider, group
//!                 the storage interface; group commit for the SQL providers
//!  2 providers  memory, sqlite, postgres
//!                 the providers
//!  3 actors     persistence
//!                 persistent actors, their journal and recovery
//! ```

#![warn(missing_docs)]

mod codec;
mod error;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod group;
mod memory;
mod persistence;
#[cfg(feature = "postgres")]
mod postgres;
mod provider;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use codec::{Entry, PersistentMessage, Record};
pub use error::{DecodeError, PersistenceError, RecordKind};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use group::WriteStats;
pub use memory::InMemoryProvider;
pub use persistence::{
    replay, replay_async, wait_for_storage, EventMeta, Journal, Persisted, Persistence, Persistent,
    Recovered, ReplayComplete, Replayed, RequestSnapshot,
};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresProvider;
pub use provider::Provider;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteProvider;
