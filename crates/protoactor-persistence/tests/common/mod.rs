//! A persistent counter and provider fixtures shared by the test suites.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use protoactor::prelude::*;
use protoactor_persistence::{
    persistent_enum, EventMeta, InMemoryProvider, Journal, Persistence, Persistent,
    PostgresProvider, Provider, RequestSnapshot, SqliteProvider,
};

/// Only to avoid hanging forever; no test asserts on time.
pub const WAIT: Duration = Duration::from_secs(120);

// ------------------------------------------------------------------ protobuf messages

/// `message Added { int64 amount = 1; uint64 seq = 2; }` in package `test`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Added {
    #[prost(int64, tag = "1")]
    pub amount: i64,
    /// The index the command expected the event to get (checks ordering on replay).
    #[prost(uint64, tag = "2")]
    pub seq: u64,
}
impl prost::Name for Added {
    const NAME: &'static str = "Added";
    const PACKAGE: &'static str = "test";
}

/// `message Reset { uint64 seq = 1; }` in package `test`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Reset {
    #[prost(uint64, tag = "1")]
    pub seq: u64,
}
impl prost::Name for Reset {
    const NAME: &'static str = "Reset";
    const PACKAGE: &'static str = "test";
}

/// `message CounterState { int64 value = 1; }` in package `test`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CounterState {
    #[prost(int64, tag = "1")]
    pub value: i64,
}
impl prost::Name for CounterState {
    const NAME: &'static str = "CounterState";
    const PACKAGE: &'static str = "test";
}

persistent_enum! {
    /// The counter's events.
    #[derive(Debug, Clone)]
    pub enum CounterEvent { Added(Added), Reset(Reset) }
}

// ------------------------------------------------------------------ the counter

/// Adds `amount`; replies `Result<i64, String>` (the new value or the error), and on error
/// fails the actor so it recovers.
pub struct Add(pub i64);
/// Persists `n` events of amount 1 in one batch; replies like [`Add`].
pub struct AddMany(pub u64);
/// Sets the value to 0 (a `Reset` event).
pub struct ResetCmd;
/// Replies a [`View`].
pub struct Get;
/// Panics (a supervisor restart follows).
pub struct Crash;

/// What the counter knows about itself.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub value: i64,
    pub next_index: u64,
    pub replayed: u64,
    pub replayed_flagged: u64,
    pub live_applied: u64,
    pub snapshots_applied: u64,
    pub snapshot_index: Option<u64>,
    pub out_of_order: u64,
    pub lifecycle: Vec<&'static str>,
    pub value_at_started: Option<i64>,
    pub snapshots_requested: u64,
}

#[derive(Default)]
pub struct Counter {
    pub view: View,
    /// Delete the events a snapshot covers when it is taken.
    pub compact: bool,
    expected_index: Option<u64>,
}

impl Counter {
    pub fn compacting() -> Self {
        Counter {
            compact: true,
            ..Default::default()
        }
    }

    fn check_order(&mut self, index: u64, seq: u64) {
        if seq != index || self.expected_index.is_some_and(|e| e != index) {
            self.view.out_of_order += 1;
        }
        self.expected_index = Some(index + 1);
    }

    fn reply(&self, ctx: &mut Context, r: Result<(), protoactor_persistence::PersistenceError>) {
        match r {
            Ok(()) => ctx.respond(Ok::<i64, String>(self.view.value)),
            Err(e) => {
                ctx.respond(Err::<i64, String>(e.to_string()));
                ctx.fail(e.into());
            }
        }
    }
}

impl Persistent for Counter {
    type Event = CounterEvent;
    type Snapshot = CounterState;

    fn apply_event(&mut self, event: CounterEvent, meta: EventMeta) {
        match event {
            CounterEvent::Added(a) => {
                self.check_order(meta.index, a.seq);
                self.view.value += a.amount;
            }
            CounterEvent::Reset(r) => {
                self.check_order(meta.index, r.seq);
                self.view.value = 0;
            }
        }
        if meta.recovering {
            self.view.replayed_flagged += 1;
        } else {
            self.view.live_applied += 1;
        }
    }

    fn apply_snapshot(&mut self, snapshot: CounterState, index: u64) {
        self.view.value = snapshot.value;
        self.view.snapshots_applied += 1;
        self.expected_index = Some(index);
    }

    fn snapshot(&self) -> CounterState {
        CounterState {
            value: self.view.value,
        }
    }

    fn receive(&mut self, ctx: &mut Context, journal: &mut Journal<Self>) {
        let m = ctx.message();
        if m.is::<Started>() {
            self.view.lifecycle.push("Started");
            self.view.value_at_started = Some(self.view.value);
            self.view.replayed = journal.replayed_events();
            self.view.snapshot_index = journal.recovered_snapshot_index();
        } else if m.is::<protoactor_persistence::ReplayComplete>() {
            self.view.lifecycle.push("ReplayComplete");
        } else if let Some(Add(n)) = m.downcast_ref::<Add>() {
            let event = CounterEvent::Added(Added {
                amount: *n,
                seq: journal.next_index(),
            });
            let r = journal.persist_event(self, ctx, event).map(|_| ());
            self.reply(ctx, r);
        } else if let Some(AddMany(n)) = m.downcast_ref::<AddMany>() {
            let first = journal.next_index();
            let events = (first..first + n)
                .map(|seq| CounterEvent::Added(Added { amount: 1, seq }))
                .collect();
            let r = journal.persist_events(self, ctx, events).map(|_| ());
            self.reply(ctx, r);
        } else if m.is::<ResetCmd>() {
            let event = CounterEvent::Reset(Reset {
                seq: journal.next_index(),
            });
            let r = journal.persist_event(self, ctx, event).map(|_| ());
            self.reply(ctx, r);
        } else if let Some(RequestSnapshot { index }) = m.downcast_ref::<RequestSnapshot>() {
            self.view.snapshots_requested += 1;
            if self.compact && *index > 0 {
                // The wrapper has stored the snapshot at `next_index`; older events can go.
                let upto = journal.next_index() - 1;
                if let Err(e) = journal.delete_events(ctx, upto) {
                    ctx.fail(e.into());
                }
            }
        } else if m.is::<Get>() {
            let mut v = self.view.clone();
            v.next_index = journal.next_index();
            ctx.respond(v);
        } else if m.is::<Crash>() {
            panic!("crash requested");
        }
    }
}

pub fn counter_props(provider: Arc<dyn Provider>, interval: u64) -> Props {
    Persistence::using(provider)
        .with_snapshot_interval(interval)
        .props(Counter::default)
}

pub fn ask<T: Message>(system: &ActorSystem, pid: &Pid, msg: impl Message) -> T {
    system
        .root()
        .request_future(pid, msg, WAIT)
        .result_as::<T>()
        .expect("the counter answers")
}

pub fn add(system: &ActorSystem, pid: &Pid, n: i64) -> Result<i64, String> {
    ask::<Result<i64, String>>(system, pid, Add(n))
}

pub fn get(system: &ActorSystem, pid: &Pid) -> View {
    ask::<View>(system, pid, Get)
}

/// A name no other test (or earlier run against the same database) uses.
pub fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

// ------------------------------------------------------------------ fixtures

/// One provider's storage, reopened as often as a test "restarts the program".
pub trait Fixture: Send + Sync {
    /// A new provider on the same storage (a fresh connection for SQL providers).
    fn open(&self, system: &ActorSystem) -> Arc<dyn Provider>;
    /// Makes the storage itself reject the write of `index` for `actor`.
    fn fail_write(&self, actor: &str, index: u64);
    /// Undoes [`Fixture::fail_write`].
    fn clear_failure(&self, actor: &str);
    /// Environment for a child process that opens the same storage.
    fn child_env(&self) -> Vec<(String, String)>;
    /// Runs SQL on the storage, as another program could (damaging rows); `false` for
    /// storage without SQL (in memory).
    fn raw_sql(&self, sql: &str) -> bool;
}

// -- in memory: failures are injected by a wrapper, as there is no storage to break

pub struct MemoryFixture {
    inner: Arc<InMemoryProvider>,
    failing: Arc<parking_lot::Mutex<Vec<(String, u64)>>>,
}

impl MemoryFixture {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(InMemoryProvider::new()),
            failing: Default::default(),
        }
    }
}

struct FailingMemory {
    inner: Arc<InMemoryProvider>,
    failing: Arc<parking_lot::Mutex<Vec<(String, u64)>>>,
}

#[async_trait::async_trait]
impl Provider for FailingMemory {
    async fn get_snapshot(
        &self,
        a: &str,
    ) -> Result<Option<protoactor_persistence::Entry>, protoactor_persistence::PersistenceError>
    {
        self.inner.get_snapshot(a).await
    }
    async fn persist_snapshot(
        &self,
        a: &str,
        i: u64,
        s: protoactor_persistence::Record,
    ) -> Result<(), protoactor_persistence::PersistenceError> {
        self.inner.persist_snapshot(a, i, s).await
    }
    async fn delete_snapshots(
        &self,
        a: &str,
        i: u64,
    ) -> Result<(), protoactor_persistence::PersistenceError> {
        self.inner.delete_snapshots(a, i).await
    }
    async fn get_events(
        &self,
        a: &str,
        from: u64,
        n: usize,
    ) -> Result<Vec<protoactor_persistence::Entry>, protoactor_persistence::PersistenceError> {
        self.inner.get_events(a, from, n).await
    }
    async fn persist_event(
        &self,
        a: &str,
        i: u64,
        e: protoactor_persistence::Record,
    ) -> Result<(), protoactor_persistence::PersistenceError> {
        self.persist_events(a, i, vec![e]).await
    }
    async fn persist_events(
        &self,
        a: &str,
        first: u64,
        e: Vec<protoactor_persistence::Record>,
    ) -> Result<(), protoactor_persistence::PersistenceError> {
        let end = first + e.len() as u64;
        if self
            .failing
            .lock()
            .iter()
            .any(|(n, i)| n == a && (first..end).contains(i))
        {
            return Err(protoactor_persistence::PersistenceError::Storage(
                "injected failure".into(),
            ));
        }
        self.inner.persist_events(a, first, e).await
    }
    async fn delete_events(
        &self,
        a: &str,
        i: u64,
    ) -> Result<(), protoactor_persistence::PersistenceError> {
        self.inner.delete_events(a, i).await
    }
}

impl Fixture for MemoryFixture {
    fn open(&self, _: &ActorSystem) -> Arc<dyn Provider> {
        Arc::new(FailingMemory {
            inner: self.inner.clone(),
            failing: self.failing.clone(),
        })
    }
    fn fail_write(&self, actor: &str, index: u64) {
        self.failing.lock().push((actor.to_string(), index));
    }
    fn clear_failure(&self, actor: &str) {
        self.failing.lock().retain(|(n, _)| n != actor);
    }
    fn child_env(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    fn raw_sql(&self, _: &str) -> bool {
        false
    }
}

// -- SQLite: a file in a temporary directory; failures by a trigger in the database

pub struct SqliteFixture {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl SqliteFixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("journal.db");
        Self { _dir: dir, path }
    }

    fn sql(&self, sql: &str) {
        // The provider creates the tables; make sure they exist before adding triggers.
        drop(SqliteProvider::open(&self.path).expect("open"));
        let c = rusqlite::Connection::open(&self.path).expect("open");
        c.busy_timeout(Duration::from_secs(30))
            .expect("busy timeout");
        c.execute_batch(sql).expect("sql");
    }
}

fn trigger_name(actor: &str) -> String {
    let clean: String = actor
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("fail_{clean}")
}

impl Fixture for SqliteFixture {
    fn open(&self, _: &ActorSystem) -> Arc<dyn Provider> {
        Arc::new(SqliteProvider::open(&self.path).expect("open SQLite"))
    }
    fn fail_write(&self, actor: &str, index: u64) {
        self.sql(&format!(
            "CREATE TRIGGER {} BEFORE INSERT ON protoactor_events \
             WHEN NEW.actor_name = '{actor}' AND NEW.event_index = {index} \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
            trigger_name(actor)
        ));
    }
    fn clear_failure(&self, actor: &str) {
        self.sql(&format!("DROP TRIGGER {};", trigger_name(actor)));
    }
    fn child_env(&self) -> Vec<(String, String)> {
        vec![
            ("CRASH_CHILD_KIND".into(), "sqlite".into()),
            ("CRASH_CHILD_TARGET".into(), self.path.display().to_string()),
        ]
    }
    fn raw_sql(&self, sql: &str) -> bool {
        self.sql(sql);
        true
    }
}

// -- PostgreSQL: the server named by PROTOACTOR_POSTGRES_URL

pub struct PostgresFixture {
    pub url: String,
}

impl PostgresFixture {
    /// The fixture, or `None` (with a loud note) when no server is configured.
    pub fn from_env() -> Option<Self> {
        protoactor_testkit::services::postgres_url("PostgreSQL provider test")
            .map(|url| Self { url })
    }

    fn sql(&self, sql: &str) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            // Creates the tables if this is the first use of the database.
            drop(PostgresProvider::connect(&self.url).await.expect("connect"));
            let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            let driver = tokio::spawn(conn);
            client.batch_execute(sql).await.expect("sql");
            drop(client);
            let _ = driver.await;
        });
    }
}

impl Fixture for PostgresFixture {
    fn open(&self, system: &ActorSystem) -> Arc<dyn Provider> {
        let p = system
            .runtime()
            .block_on(PostgresProvider::connect(&self.url))
            .expect("connect to PostgreSQL");
        Arc::new(p)
    }
    fn fail_write(&self, actor: &str, index: u64) {
        let t = trigger_name(actor);
        self.sql(&format!(
            "CREATE FUNCTION {t}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF NEW.actor_name = '{actor}' AND NEW.event_index = {index} THEN \
                 RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER {t} BEFORE INSERT ON protoactor_events \
               FOR EACH ROW EXECUTE FUNCTION {t}();"
        ));
    }
    fn clear_failure(&self, actor: &str) {
        let t = trigger_name(actor);
        self.sql(&format!(
            "DROP TRIGGER {t} ON protoactor_events; DROP FUNCTION {t}();"
        ));
    }
    fn child_env(&self) -> Vec<(String, String)> {
        vec![
            ("CRASH_CHILD_KIND".into(), "postgres".into()),
            ("CRASH_CHILD_TARGET".into(), self.url.clone()),
        ]
    }
    fn raw_sql(&self, sql: &str) -> bool {
        self.sql(sql);
        true
    }
}
