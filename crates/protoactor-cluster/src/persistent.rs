//! Persistent typed grains: the runtime of the `<Service>Persistent` traits that
//! `protoactor-cluster-build` generates with `Builder::persistent`.
//!
//! A persistent grain's state changes only by its events. Each activation:
//!
//! - **recovers** before its first request: the latest snapshot of its journal, then every
//!   event after it, through [`PersistentGrain::restore`] and [`PersistentGrain::apply`]; then
//!   [`PersistentGrain::init`] runs. A failure of either (storage down, a corrupt record, an
//!   `Err` from `init`) is logged with the identity and the store, every request that reached
//!   the activation is answered with it as a `GrainErrorResponse` (`UNAVAILABLE` for storage,
//!   `DATA_LOSS` for a record that cannot be read, `init`'s own error), and the activation
//!   stops: no method of a grain whose state was not recovered ever runs, and the next call
//!   activates it again.
//! - in a method, [`PersistentCtx::persist`] (or [`PersistentCtx::persist_all`]) applies an
//!   event at once (the method sees the new state) and queues it; when the method returns,
//!   the queued events are written in one `persist_events` and **the reply is sent only once
//!   they are durable**. A method that returns `Err` after persisting still writes its events
//!   (they are part of the state already) and answers its error.
//! - is **fenced**: a write that fails with [`PersistenceError::Conflict`] means another
//!   activation of the same identity wrote the journal first (an orphan, an overlap during a
//!   membership change). This activation then answers the caller with a retryable grain error
//!   ([`GrainError::is_stale_activation`]: `UNAVAILABLE` with metadata `stale_activation`)
//!   and stops; the generated clients retry it at once against the current activation (a
//!   fenced write stored nothing). [`PersistentCtx::ensure_current`] does the same check for
//!   a read: it fails if the journal has an event this activation has not seen.
//! - stores a snapshot after a reply when the kind's [`SnapshotPolicy`] says so (every N
//!   events, or a closure); a failed snapshot is logged and costs only replay time.
//!
//! The journal of grain `identity` of kind `K` is named `K/identity`; its records are the
//! persistence crate's (protobuf full name + bytes), which Go reads as it reads any
//! protoactor-persistence journal.
//!
//! Waiting for storage: methods run synchronously on the actor system's multi-thread
//! runtime, and a write blocks the grain (not the runtime: see
//! [`wait_for_storage`]). Grains writing at the same time share commits on the SQL
//! providers (group commit).

use std::ops::Deref;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use protoactor::message::{ReceiveTimeout, Started, Stopped};
use protoactor::{Actor, Context, ContextOps, Message, Props};
pub use protoactor_persistence::{
    persistent_enum, InMemoryProvider, PersistenceError, PersistentMessage, Provider, Record,
    Recovered,
};
use protoactor_persistence::{replay, wait_for_storage, Replayed};

use crate::cluster::Cluster;
use crate::grain::{self, GrainError};
use crate::proto::{ClusterIdentity, GrainErrorResponse, GrainRequest};

/// The state of a persistent grain: how events change it, and its snapshot. Generated
/// `<Service>Persistent` traits extend it with one function per rpc.
pub trait PersistentGrain: Sized + Send + 'static {
    /// The events (a prost message with a `prost::Name`, or an enum made with
    /// `protoactor_persistence::persistent_enum!`).
    type Event: PersistentMessage;
    /// The snapshot of the whole state.
    type Snapshot: PersistentMessage;

    /// Changes the state by one event: for new events and during recovery alike, so it must
    /// be deterministic and must not fail (the event happened).
    fn apply(&mut self, event: Self::Event);
    /// The state as a snapshot.
    fn snapshot(&self) -> Self::Snapshot;
    /// Replaces the state by a snapshot (recovery, before the events after it).
    fn restore(&mut self, snapshot: Self::Snapshot);

    /// After recovery, before the first request. An `Err` is the answer to the requests
    /// that activated the grain, which then stops (see the module docs).
    fn init(_ctx: &mut PersistentCtx<'_, Self>) -> Result<(), GrainError> {
        Ok(())
    }
    /// When the activation stops (idle timeout, shutdown, fenced).
    fn terminate(_ctx: &mut PersistentCtx<'_, Self>) {}
}

/// When a persistent grain kind stores a snapshot (after the reply of a method).
#[derive(Clone, Default)]
pub enum SnapshotPolicy {
    /// Never (recovery replays the whole journal).
    #[default]
    Never,
    /// Once at least this many events were written since the last snapshot.
    Every(u64),
    /// When the closure says so, given the journal's position.
    When(Arc<dyn Fn(SnapshotCheck) -> bool + Send + Sync>),
}

impl std::fmt::Debug for SnapshotPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotPolicy::Never => f.write_str("Never"),
            SnapshotPolicy::Every(n) => write!(f, "Every({n})"),
            SnapshotPolicy::When(_) => f.write_str("When(..)"),
        }
    }
}

/// What a [`SnapshotPolicy::When`] closure is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotCheck {
    /// The index the next event gets (= events in the journal, snapshots included).
    pub next_index: u64,
    /// Events written since the last snapshot (or since the activation recovered).
    pub since_snapshot: u64,
}

/// Where a persistent grain kind keeps its journals and when it snapshots them: one per
/// kind (`<service>_persistent_kind(store, factory)`), so each kind picks its provider
/// (in-memory, SQLite, PostgreSQL, or any [`Provider`]).
#[derive(Clone)]
pub struct GrainStore {
    provider: Arc<dyn Provider>,
    snapshots: SnapshotPolicy,
    page_size: usize,
}

impl GrainStore {
    /// Journals in `provider`; no snapshots; recovery reads 1,000 events per call.
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        GrainStore {
            provider,
            snapshots: SnapshotPolicy::Never,
            page_size: 1000,
        }
    }
    /// A snapshot once `n` events were written since the last one (0: never).
    pub fn snapshot_every(mut self, n: u64) -> Self {
        self.snapshots = if n == 0 {
            SnapshotPolicy::Never
        } else {
            SnapshotPolicy::Every(n)
        };
        self
    }
    /// A snapshot whenever `due` says so (asked after each method that wrote events).
    pub fn snapshot_when(
        mut self,
        due: impl Fn(SnapshotCheck) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.snapshots = SnapshotPolicy::When(Arc::new(due));
        self
    }
    /// How many events recovery reads per storage call.
    pub fn replay_page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }
    /// The storage.
    pub fn provider(&self) -> &Arc<dyn Provider> {
        &self.provider
    }
    /// The snapshot policy.
    pub fn snapshot_policy(&self) -> &SnapshotPolicy {
        &self.snapshots
    }

    fn snapshot_due(&self, check: SnapshotCheck) -> bool {
        match &self.snapshots {
            SnapshotPolicy::Never => false,
            SnapshotPolicy::Every(n) => check.since_snapshot >= *n,
            SnapshotPolicy::When(f) => check.since_snapshot > 0 && f(check),
        }
    }
}

impl std::fmt::Debug for GrainStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrainStore")
            .field("provider", &self.provider.describe())
            .field("snapshots", &self.snapshots)
            .finish()
    }
}

/// The journal name of grain `identity` of `kind`.
pub fn journal_name(kind: &str, identity: &str) -> String {
    format!("{kind}/{identity}")
}

/// An activation's position in its journal.
struct Log {
    store: GrainStore,
    name: String,
    /// The index the next durable event gets.
    durable: u64,
    /// Applied, not yet written.
    pending: Vec<Record>,
    since_snapshot: u64,
    snapshot_requested: bool,
    recovered: Recovered,
    /// Set when the activation must stop (fenced, or a write that may or may not have been
    /// stored): every later answer is this error.
    stop: Option<GrainError>,
}

impl Log {
    fn error(&self, e: &PersistenceError, identity: &ClusterIdentity) -> GrainError {
        let err = match e {
            PersistenceError::Conflict { index, .. } => GrainError::stale_activation(format!(
                "stale activation of {identity}: another activation wrote event {index} of \
                 journal {:?} first; this one stopped, retry",
                self.name
            )),
            PersistenceError::Corrupt { .. }
            | PersistenceError::InvalidIndex { .. }
            | PersistenceError::SnapshotBeyondJournal { .. } => GrainError::data_loss(format!(
                "journal {:?} of {identity} cannot be read: {e}",
                self.name
            )),
            _ => GrainError::unavailable(format!("journal {:?} of {identity}: {e}", self.name)),
        };
        err.with_metadata("store", self.store.provider.describe())
            .with_metadata("journal", self.name.clone())
    }
}

/// The context of a persistent grain's method: the grain's state (read through `Deref`,
/// changed only by [`PersistentCtx::persist`]), its journal, its identity and cluster, and
/// the actor [`Context`] ([`PersistentCtx::context`]).
pub struct PersistentCtx<'a, T: PersistentGrain> {
    ctx: &'a mut Context,
    grain: &'a mut T,
    identity: &'a ClusterIdentity,
    cluster: &'a Cluster,
    log: &'a mut Log,
}

impl<T: PersistentGrain> Deref for PersistentCtx<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.grain
    }
}

impl<T: PersistentGrain> PersistentCtx<'_, T> {
    /// Applies `event` to the state now and writes it before the method's reply.
    pub fn persist(&mut self, event: T::Event) {
        if self.log.stop.is_some() {
            return; // a stopping activation's state no longer matters
        }
        self.log.pending.push(event.to_record());
        self.grain.apply(event);
    }

    /// [`PersistentCtx::persist`] for several events, written together (all or none).
    pub fn persist_all(&mut self, events: impl IntoIterator<Item = T::Event>) {
        for e in events {
            self.persist(e);
        }
    }

    /// Writes the queued events now (e.g. before calling another grain), instead of when
    /// the method returns. An `Err` (fenced, storage failure) stops the activation after
    /// this method: return it (`?`).
    pub fn flush(&mut self) -> Result<(), GrainError> {
        if let Some(e) = &self.log.stop {
            return Err(e.clone());
        }
        if self.log.pending.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.log.pending);
        let n = records.len() as u64;
        let first = self.log.durable;
        let provider = self.log.store.provider.clone();
        let written = wait_for_storage(
            self.ctx,
            provider.persist_events(&self.log.name, first, records),
        )
        .and_then(|r| r);
        match written {
            Ok(()) => {
                self.log.durable += n;
                self.log.since_snapshot += n;
                Ok(())
            }
            Err(e) => Err(self.stop_with(&e)),
        }
    }

    /// Checks that no other activation wrote this grain's journal since this one last read
    /// or wrote it (writing the queued events first). After an `Err` (stale, or storage
    /// unreachable) the activation stops: return it (`?`). Costs one storage read; use it in
    /// methods that only read, where a stale activation would answer old state.
    pub fn ensure_current(&mut self) -> Result<(), GrainError> {
        self.flush()?;
        let provider = self.log.store.provider.clone();
        let later = wait_for_storage(
            self.ctx,
            provider.get_events(&self.log.name, self.log.durable, 1),
        )
        .and_then(|r| r);
        match later {
            Ok(events) => match events.first() {
                None => Ok(()),
                Some(e) => Err(self.stop_with(&PersistenceError::Conflict {
                    actor: self.log.name.clone(),
                    index: e.index,
                })),
            },
            Err(e) => Err(self.stop_with(&e)),
        }
    }

    fn stop_with(&mut self, e: &PersistenceError) -> GrainError {
        let err = self.log.error(e, self.identity);
        self.log.stop.get_or_insert(err).clone()
    }

    /// Stores a snapshot after this method's reply, whatever the policy says.
    pub fn snapshot_now(&mut self) {
        self.log.snapshot_requested = true;
    }
    /// The grain's identity.
    pub fn identity(&self) -> &str {
        &self.identity.identity
    }
    /// The grain's kind.
    pub fn kind(&self) -> &str {
        &self.identity.kind
    }
    /// The grain's identity and kind.
    pub fn grain_identity(&self) -> &ClusterIdentity {
        self.identity
    }
    /// The cluster (to call other grains).
    pub fn cluster(&self) -> &Cluster {
        self.cluster
    }
    /// The actor context (sender, system, timers, ...).
    pub fn context(&mut self) -> &mut Context {
        self.ctx
    }
    /// The journal's name (`kind/identity`).
    pub fn journal_name(&self) -> &str {
        &self.log.name
    }
    /// The index the next event gets, counting the events queued in this method.
    pub fn next_index(&self) -> u64 {
        self.log.durable + self.log.pending.len() as u64
    }
    /// What this activation's recovery read: its snapshot's index, the events replayed.
    pub fn recovered(&self) -> Recovered {
        self.log.recovered
    }
    /// The kind's store.
    pub fn store(&self) -> &GrainStore {
        &self.log.store
    }
}

/// A generated persistent service, as its actor runs it (filled in by generated code).
pub struct PersistentService<T: PersistentGrain> {
    /// The kind name.
    pub kind: &'static str,
    /// Calls the method of `method_index` (through [`handle`]).
    pub dispatch: fn(&mut PersistentCtx<'_, T>, GrainRequest),
}

impl<T: PersistentGrain> Clone for PersistentService<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: PersistentGrain> Copy for PersistentService<T> {}

/// The props of a generated persistent grain kind: each activation makes its grain with
/// `factory`, recovers it from `store`, answers `GrainRequest`s through `service.dispatch`,
/// and stops after `idle_timeout` without a message (zero: never).
pub fn persistent_props<T: PersistentGrain>(
    service: PersistentService<T>,
    store: GrainStore,
    factory: impl Fn() -> T + Send + Sync + 'static,
    idle_timeout: Duration,
) -> Props {
    let factory: Arc<dyn Fn() -> T + Send + Sync> = Arc::new(factory);
    Props::from_producer(move || PersistentGrainActor {
        service,
        store: store.clone(),
        factory: factory.clone(),
        idle_timeout,
        phase: Phase::Starting,
    })
}

/// How long an activation whose recovery failed waits for the request that activated it.
const FAILED_LINGER: Duration = Duration::from_secs(5);

enum Phase<T> {
    Starting,
    Active(Box<Active<T>>),
    /// Recovery or `init` failed: the answer to every request until the activation stops;
    /// true once it is stopping.
    Failed(GrainErrorResponse, bool),
}

struct Active<T> {
    grain: T,
    identity: ClusterIdentity,
    cluster: Cluster,
    log: Log,
}

impl<T: PersistentGrain> Active<T> {
    fn with_ctx<R>(
        &mut self,
        ctx: &mut Context,
        f: impl FnOnce(&mut PersistentCtx<'_, T>) -> R,
    ) -> R {
        let mut pc = PersistentCtx {
            ctx,
            grain: &mut self.grain,
            identity: &self.identity,
            cluster: &self.cluster,
            log: &mut self.log,
        };
        f(&mut pc)
    }
}

/// The actor of a generated persistent grain kind.
pub struct PersistentGrainActor<T: PersistentGrain> {
    service: PersistentService<T>,
    store: GrainStore,
    factory: Arc<dyn Fn() -> T + Send + Sync>,
    idle_timeout: Duration,
    phase: Phase<T>,
}

impl<T: PersistentGrain> PersistentGrainActor<T> {
    /// Recovers the grain and runs `init`; on failure, answers with the error and stops.
    fn activate(&mut self, ctx: &mut Context) {
        let cluster = Cluster::from_system(ctx.system());
        let identity = cluster
            .as_ref()
            .and_then(|c| c.activation(ctx.self_pid().id()));
        let (Some(cluster), Some(identity)) = (cluster, identity) else {
            tracing::error!(pid = %ctx.self_pid(), kind = self.service.kind,
                "a generated grain runs only as a cluster activation; stopping");
            let me = ctx.self_pid().clone();
            ctx.stop(&me);
            return;
        };
        let mut active = Box::new(Active {
            grain: (self.factory)(),
            log: Log {
                store: self.store.clone(),
                name: journal_name(&identity.kind, &identity.identity),
                durable: 0,
                pending: Vec::new(),
                since_snapshot: 0,
                snapshot_requested: false,
                recovered: Recovered::default(),
                stop: None,
            },
            identity,
            cluster,
        });
        let result = self.recover(ctx, &mut active).and_then(|()| {
            active.with_ctx(ctx, |pc| {
                T::init(pc)?;
                pc.flush() // events `init` persisted
            })
        });
        match result {
            Ok(()) => {
                self.phase = Phase::Active(active);
                if !self.idle_timeout.is_zero() {
                    ctx.set_receive_timeout(self.idle_timeout);
                }
            }
            Err(e) => {
                tracing::error!(identity = %active.identity,
                    store = %active.log.store.provider.describe(), journal = %active.log.name,
                    error = %e, "persistent grain did not start: its requests get the error");
                self.phase = Phase::Failed(e.to_response(), false);
                // The request that activated the grain may not have arrived yet (its caller
                // sends it once the activation is placed): the activation waits for it, and
                // stops after answering it (see `receive`) or after `FAILED_LINGER`.
                ctx.set_receive_timeout(FAILED_LINGER);
            }
        }
    }

    fn recover(&self, ctx: &Context, active: &mut Active<T>) -> Result<(), GrainError> {
        let grain = &mut active.grain;
        let log = &mut active.log;
        let recovered = replay::<T::Snapshot, T::Event>(
            ctx,
            log.store.provider(),
            &log.name,
            log.store.page_size,
            |item| match item {
                Replayed::Snapshot(s, _) => grain.restore(s),
                Replayed::Event(e, _) => grain.apply(e),
            },
        )
        .map_err(|e| log.error(&e, &active.identity))?;
        log.durable = recovered.next_index;
        log.recovered = recovered;
        Ok(())
    }

    /// After a request: stops a fenced or broken activation, or snapshots when due.
    fn after_request(&mut self, ctx: &mut Context) {
        let Phase::Active(active) = &mut self.phase else {
            return;
        };
        if let Some(e) = &active.log.stop {
            tracing::warn!(identity = %active.identity,
                store = %active.log.store.provider.describe(), journal = %active.log.name,
                error = %e, "persistent grain activation stops");
            let me = ctx.self_pid().clone();
            ctx.stop(&me);
            return;
        }
        let log = &mut active.log;
        let check = SnapshotCheck {
            next_index: log.durable,
            since_snapshot: log.since_snapshot,
        };
        if !(log.snapshot_requested || log.store.snapshot_due(check)) {
            return;
        }
        log.snapshot_requested = false;
        let record = active.grain.snapshot().to_record();
        let provider = log.store.provider.clone();
        let stored = wait_for_storage(
            ctx,
            provider.persist_snapshot(&log.name, log.durable, record),
        )
        .and_then(|r| r);
        match stored {
            Ok(()) => log.since_snapshot = 0,
            // Only replay time is lost; the next method tries again.
            Err(e) => tracing::warn!(identity = %active.identity, journal = %log.name,
                store = %provider.describe(), error = %e, "persistent grain snapshot failed"),
        }
    }
}

impl<T: PersistentGrain> Actor for PersistentGrainActor<T> {
    fn receive(&mut self, ctx: &mut Context) {
        if ctx.message().is::<Started>() {
            self.activate(ctx);
        } else if ctx.message().is::<ReceiveTimeout>() {
            let me = ctx.self_pid().clone();
            ctx.poison(&me);
        } else if ctx.message().is::<Stopped>() {
            if let Phase::Active(active) = &mut self.phase {
                active.with_ctx(ctx, |pc| T::terminate(pc));
            }
        } else if let Some(req) = ctx.take_message::<GrainRequest>() {
            let dispatch = self.service.dispatch;
            match &mut self.phase {
                Phase::Active(active) => active.with_ctx(ctx, |pc| dispatch(pc, req)),
                Phase::Failed(e, stopping) => {
                    ctx.respond(e.clone());
                    if !*stopping {
                        // After the requests queued meanwhile, which get the error too; later
                        // ones activate the grain again.
                        *stopping = true;
                        let me = ctx.self_pid().clone();
                        ctx.poison(&me);
                    }
                    return;
                }
                Phase::Starting => {
                    return ctx
                        .respond(GrainError::unavailable("the grain is not started").to_response())
                }
            }
            self.after_request(ctx);
        }
    }
}

/// Runs a generated persistent method: decodes the input (`INVALID_ARGUMENT` if it cannot),
/// calls `f`, writes the events it persisted, then answers its output or error (or the
/// activation's stop error: fenced, storage failure). A panic in `f` is answered `INTERNAL`
/// and goes on to the supervisor; its queued events are dropped, and the restarted
/// activation recovers from the journal.
pub fn handle<T, In, Out>(
    ctx: &mut PersistentCtx<'_, T>,
    req: &GrainRequest,
    f: impl FnOnce(&mut PersistentCtx<'_, T>, In) -> Result<Out, GrainError>,
) where
    T: PersistentGrain,
    In: prost::Message + Default,
    Out: Message,
{
    let input = match grain::decode::<In>(req) {
        Ok(i) => i,
        Err(e) => return ctx.ctx.respond(e.to_response()),
    };
    let result = match catch_unwind(AssertUnwindSafe(|| f(ctx, input))) {
        Ok(r) => r,
        Err(payload) => {
            ctx.log.pending.clear();
            ctx.ctx
                .respond(GrainError::internal(grain::panic_text(&*payload)).to_response());
            resume_unwind(payload)
        }
    };
    let result = ctx.flush().and(result);
    match ctx.log.stop.clone() {
        Some(stop) => ctx.ctx.respond(stop.to_response()),
        None => match result {
            Ok(out) => ctx.ctx.respond(out),
            Err(e) => ctx.ctx.respond(e.to_response()),
        },
    }
}

/// Answers a request for a method index the service does not have with `UNIMPLEMENTED`.
pub fn unknown_method<T: PersistentGrain>(ctx: &mut PersistentCtx<'_, T>, kind: &str, index: i32) {
    ctx.ctx.respond(grain::unknown_method_error(kind, index));
}
