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
//!   fenced write stored nothing). [`PersistentCtx::ensure_current`] asks for the same check
//!   for a method that only reads: before its reply, the journal is read once, and an event
//!   this activation has not seen turns the reply into that error.
//! - stores a snapshot after a reply when the kind's [`SnapshotPolicy`] says so (every N
//!   events, or a closure); a failed snapshot is logged and costs only replay time.
//!
//! The journal of grain `identity` of kind `K` is named `K/identity`; its records are the
//! persistence crate's (protobuf full name + bytes), which Go reads as it reads any
//! protoactor-persistence journal.
//!
//! Waiting for storage holds no thread: a method runs synchronously, and when it returns
//! with events to write, the write runs as a task of the actor system's runtime (recovery
//! and snapshots too) while the activation keeps the requests that arrive meanwhile, in
//! order, and runs them after the reply. So any number of grains can wait for their
//! writes at once, and grains writing at the same time share commits on the SQL providers
//! (group commit). An activation has at most one storage call in flight.

use std::collections::VecDeque;
use std::future::Future;
use std::ops::Deref;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use protoactor::message::{ReceiveTimeout, Restarting, Started, Stopped};
use protoactor::{Actor, Context, ContextOps, Message, MessageEnvelope, Pid, Props};
pub use protoactor_persistence::{
    persistent_enum, InMemoryProvider, PersistenceError, PersistentMessage, Provider, Record,
    Recovered,
};
use protoactor_persistence::{replay_async, Replayed};

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

/// A method's answer, sent to its caller once the method's events are durable.
type Answer = Box<dyn FnOnce(&Context, Option<&Pid>) + Send>;

fn answer<M: Message>(message: M) -> Answer {
    Box::new(move |ctx, to| send_to(ctx, to, message))
}

/// Sends `message` to a request's sender, as `Context::respond` does for the current message
/// (the activation answers requests after other messages were handled, so it keeps senders).
fn send_to<M: Message>(ctx: &Context, to: Option<&Pid>, message: M) {
    match to {
        Some(pid) => ctx.send(pid, message),
        None => {
            let system = ctx.system();
            system
                .dead_letter()
                .send_user_message(system, MessageEnvelope::new(message));
        }
    }
}

/// An activation's position in its journal.
struct Log {
    store: GrainStore,
    name: String,
    /// The index the next durable event gets.
    durable: u64,
    /// Applied, not yet written.
    pending: Vec<Record>,
    /// The method asked for [`PersistentCtx::ensure_current`].
    check: bool,
    since_snapshot: u64,
    snapshot_requested: bool,
    recovered: Recovered,
    /// The sender of the request being handled.
    caller: Option<Pid>,
    /// The handled request's answer (set by [`handle`]).
    answer: Option<Answer>,
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
        self.log.pending.push(event.to_record());
        self.grain.apply(event);
    }

    /// [`PersistentCtx::persist`] for several events, written together (all or none).
    pub fn persist_all(&mut self, events: impl IntoIterator<Item = T::Event>) {
        for e in events {
            self.persist(e);
        }
    }

    /// Asks that, before this method's reply is sent, the journal is checked for an event
    /// this activation has not seen (another activation wrote since this one last read or
    /// wrote it). If there is one, the caller gets the stale-activation error instead of
    /// the method's answer and the activation stops, as after a fenced write. Costs one
    /// storage read; use it in methods that only read (or refuse), where a stale activation
    /// would answer old state. Methods that persist need it less: their write is a check.
    pub fn ensure_current(&mut self) {
        self.log.check = true;
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
    /// The actor context (system, timers, ...). The request being handled is answered by
    /// the method's return value, not through this context.
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
        waiting: VecDeque::new(),
        busy: false,
        in_flight: None,
        incarnation: NEXT_INCARNATION.fetch_add(1, Ordering::Relaxed),
    })
}

/// How long an activation whose recovery failed waits for the request that activated it.
const FAILED_LINGER: Duration = Duration::from_secs(5);

/// Tells apart the actor instances of one activation (a supervisor restart makes a new one),
/// so that a storage call's continuation reaches only the instance that made the call.
static NEXT_INCARNATION: AtomicU64 = AtomicU64::new(1);

enum Phase<T> {
    /// Before `Started`, and while recovery runs (the state is on the recovery's task).
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

/// A request kept while the activation waits for storage.
struct Waiting {
    sender: Option<Pid>,
    request: GrainRequest,
}

/// The outcome of a storage call, or the panic that interrupted it (re-raised inside the
/// actor, where its supervisor sees it).
type Caught<R> = Result<R, Box<dyn std::any::Any + Send>>;

/// Polls `inner`, catching a panic (a grain's `apply` during recovery runs on the task).
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Caught<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// The actor of a generated persistent grain kind.
pub struct PersistentGrainActor<T: PersistentGrain> {
    service: PersistentService<T>,
    store: GrainStore,
    factory: Arc<dyn Fn() -> T + Send + Sync>,
    idle_timeout: Duration,
    phase: Phase<T>,
    /// Requests that arrived while a storage call was in flight, in arrival order.
    waiting: VecDeque<Waiting>,
    /// A storage call (recovery, a write, a snapshot) is in flight.
    busy: bool,
    /// The sender of the request whose events are being written.
    in_flight: Option<Option<Pid>>,
    incarnation: u64,
}

impl<T: PersistentGrain> PersistentGrainActor<T> {
    /// Runs `call` on the runtime (holding no thread while it waits), then `then` inside
    /// the actor, in order with its messages; requests wait meanwhile.
    fn storage_call<R, F, C>(&mut self, ctx: &mut Context, call: F, then: C)
    where
        F: Future<Output = R> + Send + 'static,
        R: Send + 'static,
        C: FnOnce(&mut Self, &mut Context, R) + Send + 'static,
    {
        self.busy = true;
        let incarnation = self.incarnation;
        ctx.reenter_after::<Self, _, _>(
            CatchPanic(Box::pin(call)),
            move |me, ctx, out: Caught<R>| {
                if me.incarnation != incarnation {
                    return; // made by an instance the supervisor replaced
                }
                me.busy = false;
                match out {
                    Ok(r) => then(me, ctx, r),
                    Err(panic) => resume_unwind(panic),
                }
            },
        );
    }

    /// Starts recovering the grain (on a task that owns it meanwhile).
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
                check: false,
                since_snapshot: 0,
                snapshot_requested: false,
                recovered: Recovered::default(),
                caller: None,
                answer: None,
                stop: None,
            },
            identity,
            cluster,
        });
        let recovery =
            async move {
                let provider = active.log.store.provider.clone();
                let name = active.log.name.clone();
                let page_size = active.log.store.page_size;
                let grain = &mut active.grain;
                let r =
                    replay_async::<T::Snapshot, T::Event>(&provider, &name, page_size, |item| {
                        match item {
                            Replayed::Snapshot(s, _) => grain.restore(s),
                            Replayed::Event(e, _) => grain.apply(e),
                        }
                    })
                    .await;
                (active, r)
            };
        self.storage_call(ctx, recovery, |me, ctx, (active, r)| {
            me.recovered(ctx, active, r)
        });
    }

    /// After recovery: runs `init`, then the requests that waited (or fails them all).
    fn recovered(
        &mut self,
        ctx: &mut Context,
        mut active: Box<Active<T>>,
        r: Result<Recovered, PersistenceError>,
    ) {
        let result = match r {
            Ok(recovered) => {
                active.log.durable = recovered.next_index;
                active.log.recovered = recovered;
                active.with_ctx(ctx, |pc| T::init(pc))
            }
            Err(e) => Err(active.log.error(&e, &active.identity)),
        };
        if let Err(e) = result {
            tracing::error!(identity = %active.identity,
                store = %active.log.store.provider.describe(), journal = %active.log.name,
                error = %e, "persistent grain did not start: its requests get the error");
            self.phase = Phase::Failed(e.to_response(), false);
            if self.waiting.is_empty() {
                // The request that activated the grain may not have arrived yet (its caller
                // sends it once the activation is placed): the activation waits for it, and
                // stops after answering it (see `run`) or after `FAILED_LINGER`.
                ctx.set_receive_timeout(FAILED_LINGER);
            }
            return self.run_waiting(ctx);
        }
        self.phase = Phase::Active(active);
        if !self.idle_timeout.is_zero() {
            ctx.set_receive_timeout(self.idle_timeout);
        }
        // Events `init` persisted are written before the first request runs.
        self.after_method(ctx, None, None);
        self.run_waiting(ctx);
    }

    /// Runs the requests that waited, until one starts a storage call.
    fn run_waiting(&mut self, ctx: &mut Context) {
        while !self.busy {
            let Some(w) = self.waiting.pop_front() else {
                return;
            };
            self.run(ctx, w.sender, w.request);
        }
    }

    /// Handles one request (the activation is not waiting for storage).
    fn run(&mut self, ctx: &mut Context, sender: Option<Pid>, request: GrainRequest) {
        match &mut self.phase {
            Phase::Active(active) => {
                if let Some(stop) = &active.log.stop {
                    return send_to(ctx, sender.as_ref(), stop.to_response());
                }
                let dispatch = self.service.dispatch;
                active.log.caller = sender.clone();
                active.with_ctx(ctx, |pc| dispatch(pc, request));
                let answer = active.log.answer.take();
                self.after_method(ctx, sender, answer);
            }
            Phase::Failed(e, stopping) => {
                send_to(ctx, sender.as_ref(), e.clone());
                if !*stopping {
                    // After the requests queued meanwhile, which get the error too; later
                    // ones activate the grain again.
                    *stopping = true;
                    let me = ctx.self_pid().clone();
                    ctx.poison(&me);
                }
            }
            Phase::Starting => send_to(
                ctx,
                sender.as_ref(),
                GrainError::unavailable("the grain is not started").to_response(),
            ),
        }
    }

    /// After a method (or `init`): writes its events and checks, then answers; or answers
    /// at once when there is nothing to wait for.
    fn after_method(&mut self, ctx: &mut Context, caller: Option<Pid>, answer: Option<Answer>) {
        let Phase::Active(active) = &mut self.phase else {
            return;
        };
        let log = &mut active.log;
        if log.pending.is_empty() && !log.check {
            if let Some(a) = answer {
                a(ctx, caller.as_ref());
            }
            return self.snapshot_if_due(ctx);
        }
        let records = std::mem::take(&mut log.pending);
        let check = std::mem::take(&mut log.check);
        let n = records.len() as u64;
        let first = log.durable;
        let provider = log.store.provider.clone();
        let name = log.name.clone();
        let write = async move {
            if !records.is_empty() {
                provider.persist_events(&name, first, records).await?;
            }
            if check {
                let later = provider.get_events(&name, first + n, 1).await?;
                if let Some(e) = later.first() {
                    return Err(PersistenceError::Conflict {
                        actor: name,
                        index: e.index,
                    });
                }
            }
            Ok(())
        };
        self.in_flight = Some(caller.clone());
        self.storage_call(ctx, write, move |me, ctx, r| {
            me.written(ctx, n, r, caller, answer)
        });
    }

    /// A method's write is done: answers, and snapshots when due; or stops the activation.
    fn written(
        &mut self,
        ctx: &mut Context,
        n: u64,
        r: Result<(), PersistenceError>,
        caller: Option<Pid>,
        answer: Option<Answer>,
    ) {
        self.in_flight = None;
        let Phase::Active(active) = &mut self.phase else {
            return;
        };
        let log = &mut active.log;
        match r {
            Ok(()) => {
                log.durable += n;
                log.since_snapshot += n;
                if let Some(a) = answer {
                    a(ctx, caller.as_ref());
                }
                self.snapshot_if_due(ctx);
                self.run_waiting(ctx);
            }
            Err(e) => {
                let err = log.error(&e, &active.identity);
                tracing::warn!(identity = %active.identity,
                    store = %log.store.provider.describe(), journal = %log.name,
                    error = %err, "persistent grain activation stops");
                log.stop = Some(err.clone());
                let response = err.to_response();
                send_to(ctx, caller.as_ref(), response.clone());
                // The requests that waited were not run (nothing of theirs is stored).
                for w in self.waiting.drain(..) {
                    send_to(ctx, w.sender.as_ref(), response.clone());
                }
                let me = ctx.self_pid().clone();
                ctx.stop(&me);
            }
        }
    }

    /// Stores a snapshot when the policy (or the method) asks for one.
    fn snapshot_if_due(&mut self, ctx: &mut Context) {
        let Phase::Active(active) = &mut self.phase else {
            return;
        };
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
        let (name, index) = (log.name.clone(), log.durable);
        let store = async move {
            let r = provider.persist_snapshot(&name, index, record).await;
            (provider, r)
        };
        self.storage_call(ctx, store, move |me, ctx, (provider, r)| {
            if let Phase::Active(active) = &mut me.phase {
                match r {
                    Ok(()) => active.log.since_snapshot = active.log.durable - index,
                    // Only replay time is lost; the next method tries again.
                    Err(e) => tracing::warn!(identity = %active.identity,
                        journal = %active.log.name, store = %provider.describe(), error = %e,
                        "persistent grain snapshot failed"),
                }
            }
            me.run_waiting(ctx);
        });
    }

    /// The activation ends (stopped, or replaced by its supervisor): answers the requests it
    /// will not run.
    fn abandon(&mut self, ctx: &mut Context) {
        if let Some(caller) = self.in_flight.take() {
            let e = GrainError::unavailable(
                "the activation stopped while writing this call's events; they may or may not \
                 be stored",
            );
            send_to(ctx, caller.as_ref(), e.to_response());
        }
        if !self.waiting.is_empty() {
            // Nothing of these was run or stored: the caller's retry reaches the next one.
            let e =
                GrainError::stale_activation("the activation stopped before this call ran; retry")
                    .to_response();
            for w in self.waiting.drain(..) {
                send_to(ctx, w.sender.as_ref(), e.clone());
            }
        }
    }
}

impl<T: PersistentGrain> Actor for PersistentGrainActor<T> {
    fn receive(&mut self, ctx: &mut Context) {
        if ctx.message().is::<Started>() {
            self.activate(ctx);
        } else if ctx.message().is::<ReceiveTimeout>() {
            if !self.busy && self.waiting.is_empty() {
                let me = ctx.self_pid().clone();
                ctx.poison(&me);
            }
        } else if ctx.message().is::<Stopped>() {
            self.abandon(ctx);
            if let Phase::Active(active) = &mut self.phase {
                active.with_ctx(ctx, |pc| T::terminate(pc));
            }
        } else if ctx.message().is::<Restarting>() {
            self.abandon(ctx);
        } else if let Some(request) = ctx.take_message::<GrainRequest>() {
            let sender = ctx.sender().cloned();
            if self.busy {
                self.waiting.push_back(Waiting { sender, request });
            } else {
                self.run(ctx, sender, request);
            }
        }
    }
}

/// Runs a generated persistent method: decodes the input (`INVALID_ARGUMENT` if it cannot),
/// calls `f`, and keeps its output or error as the answer, which the activation sends once
/// the events `f` persisted are written (or the activation's stop error instead: fenced,
/// storage failure). A panic in `f` is answered `INTERNAL` and goes on to the supervisor;
/// its queued events are dropped, and the restarted activation recovers from the journal.
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
        Err(e) => {
            ctx.log.answer = Some(answer(e.to_response()));
            return;
        }
    };
    let result = match catch_unwind(AssertUnwindSafe(|| f(ctx, input))) {
        Ok(r) => r,
        Err(payload) => {
            ctx.log.pending.clear();
            ctx.log.check = false;
            let e = GrainError::internal(grain::panic_text(&*payload)).to_response();
            send_to(ctx.ctx, ctx.log.caller.as_ref(), e);
            resume_unwind(payload)
        }
    };
    ctx.log.answer = Some(match result {
        Ok(out) => answer(out),
        Err(e) => answer(e.to_response()),
    });
}

/// Answers a request for a method index the service does not have with `UNIMPLEMENTED`.
pub fn unknown_method<T: PersistentGrain>(ctx: &mut PersistentCtx<'_, T>, kind: &str, index: i32) {
    ctx.log.answer = Some(answer(grain::unknown_method_error(kind, index)));
}
