//! Persistent actors: the [`Persistent`] trait, the [`Journal`] handle and the
//! [`Persistence`] props builder.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use protoactor::message::MessageEnvelope;
use protoactor::props::{ReceiverFunc, SenderFunc};
use protoactor::{
    Actor, Context, ContextOps, Pid, Props, ReceiveTimeout, Restarting, Started, Stopped, Stopping,
    SupervisorStrategy, Terminated,
};

use crate::codec::{PersistentMessage, Record};
use crate::error::{DecodeError, PersistenceError, RecordKind};
use crate::provider::Provider;

/// Delivered to a persistent actor right after `Started`, once its state is recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayComplete;

/// Sent by a persistent actor to itself every `snapshot_interval` events. The actor's
/// wrapper stores [`Persistent::snapshot`] when it arrives, then passes it on to
/// [`Persistent::receive`] (e.g. to delete events the snapshot covers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSnapshot {
    /// How many events had been persisted when the snapshot was requested.
    pub index: u64,
}

/// Where an applied event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMeta {
    /// The event's index in the journal.
    pub index: u64,
    /// True while replaying stored events on start/restart, false for a newly persisted one.
    pub recovering: bool,
}

/// An event-sourced actor: its state changes only by applying events, so that replaying the
/// stored events (after the latest snapshot) rebuilds it.
///
/// Spawn it with [`Persistence::props`]; it does not implement [`Actor`] itself. Commands
/// arrive in [`Persistent::receive`], which decides on events and stores them with
/// [`Journal::persist_event`] (stores, then applies).
pub trait Persistent: Send + Sized + 'static {
    /// The events (a protobuf message, or an enum made with [`persistent_enum!`](crate::persistent_enum)).
    type Event: PersistentMessage;
    /// The snapshot of the whole state (a protobuf message).
    type Snapshot: PersistentMessage;

    /// Changes the state by one event. Must be deterministic and infallible (the event
    /// already happened); runs for new events and during replay.
    fn apply_event(&mut self, event: Self::Event, meta: EventMeta);
    /// Replaces the state by a snapshot taken after `index` events.
    fn apply_snapshot(&mut self, snapshot: Self::Snapshot, index: u64);
    /// The current state as a snapshot.
    fn snapshot(&self) -> Self::Snapshot;
    /// Handles a message (after recovery: `Started`, then [`ReplayComplete`], then the rest).
    fn receive(&mut self, ctx: &mut Context, journal: &mut Journal<Self>);

    /// The strategy for this actor's children (as [`Actor::supervisor_strategy`]).
    fn supervisor_strategy(&self) -> Option<Arc<dyn SupervisorStrategy>> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    NotRecovered,
    Recovering,
    Ready,
    Failed,
    Broken,
}

/// A persistent actor's handle on its journal: persists events and snapshots, tells where
/// recovery is. Owned by the actor's wrapper and lent to [`Persistent::receive`].
pub struct Journal<A> {
    provider: Arc<dyn Provider>,
    configured_name: Option<String>,
    name: String,
    next_index: u64,
    snapshot_interval: u64,
    page_size: usize,
    status: Status,
    replayed: u64,
    snapshot_index: Option<u64>,
    /// The error of an event write that failed while handling the current message.
    failed_write: Option<PersistenceError>,
    /// The encoding of the event being stored, reused from event to event.
    payload: Vec<u8>,
    _actor: PhantomData<fn() -> A>,
}

impl<A: Persistent> Journal<A> {
    fn new(config: &Persistence) -> Self {
        Self {
            provider: config.provider.clone(),
            configured_name: config.name.clone(),
            name: String::new(),
            next_index: 0,
            snapshot_interval: config.snapshot_interval,
            page_size: config.page_size,
            status: Status::NotRecovered,
            replayed: 0,
            snapshot_index: None,
            failed_write: None,
            payload: Vec::new(),
            _actor: PhantomData,
        }
    }

    /// The persistence name (the PID's id unless set with [`Persistence::with_name`]).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// True while stored events are being replayed.
    pub fn recovering(&self) -> bool {
        self.status == Status::Recovering
    }
    /// The index the next event gets (= how many events the journal has had).
    pub fn next_index(&self) -> u64 {
        self.next_index
    }
    /// How many events the last recovery replayed (after its snapshot).
    pub fn replayed_events(&self) -> u64 {
        self.replayed
    }
    /// The index of the snapshot the last recovery started from, if any.
    pub fn recovered_snapshot_index(&self) -> Option<u64> {
        self.snapshot_index
    }
    /// Events between snapshot requests (0: none).
    pub fn snapshot_interval(&self) -> u64 {
        self.snapshot_interval
    }
    /// The storage.
    pub fn provider(&self) -> &Arc<dyn Provider> {
        &self.provider
    }

    fn writable(&self) -> Result<(), PersistenceError> {
        match self.status {
            Status::Ready => Ok(()),
            Status::Broken => Err(PersistenceError::Broken(self.name.clone())),
            Status::Recovering | Status::NotRecovered | Status::Failed => Err(
                PersistenceError::Runtime(format!("journal of {:?} is not recovered", self.name)),
            ),
        }
    }

    /// Stores `event` at the next index, then applies it to `actor` and returns its index.
    ///
    /// On error nothing is applied and the journal refuses further writes
    /// ([`PersistenceError::Broken`]): the log may hold the event or another writer's
    /// (on [`PersistenceError::Conflict`]), so the actor should fail
    /// (`ctx.fail(e.into())`) and recover the truth on restart.
    ///
    /// The requester of the command is not left waiting: if the handler returns without
    /// having sent anything to the message's sender, the wrapper sends it the error (a
    /// [`PersistenceError`]) as the reply.
    pub fn persist_event(
        &mut self,
        actor: &mut A,
        ctx: &Context,
        event: A::Event,
    ) -> Result<u64, PersistenceError> {
        let r = self.store_event(actor, ctx, event);
        self.note_failure(r)
    }

    /// Keeps the first failed write's error of the current message, for its requester.
    fn note_failure<T>(&mut self, r: Result<T, PersistenceError>) -> Result<T, PersistenceError> {
        if let Err(e) = &r {
            self.failed_write.get_or_insert_with(|| e.clone());
        }
        r
    }

    fn store_event(
        &mut self,
        actor: &mut A,
        ctx: &Context,
        event: A::Event,
    ) -> Result<u64, PersistenceError> {
        self.writable()?;
        let index = self.next_index;
        self.payload.clear();
        event.encode_payload_into(&mut self.payload);
        let type_name = match event.static_type_name() {
            Some(name) => std::borrow::Cow::Borrowed(name),
            None => std::borrow::Cow::Owned(event.type_name()),
        };
        // A provider that writes at once takes the parts as they are; another gets a record
        // (the buffer goes with it) and is awaited.
        let result =
            match self
                .provider
                .persist_event_now(&self.name, index, &type_name, &self.payload)
            {
                Some(r) => r,
                None => {
                    let record = Record {
                        type_name: type_name.into_owned(),
                        payload: std::mem::take(&mut self.payload),
                    };
                    wait_for_storage(ctx, self.provider.persist_event(&self.name, index, record))
                        .and_then(|r| r)
                }
            };
        if let Err(e) = result {
            self.status = Status::Broken;
            return Err(e);
        }
        self.next_index = index + 1;
        actor.apply_event(
            event,
            EventMeta {
                index,
                recovering: false,
            },
        );
        self.request_snapshot_if_due(ctx, index, index + 1);
        Ok(index)
    }

    /// Stores `events` (all or none, one round trip), then applies them in order; returns
    /// the range of their indexes. Errors (and the requester's reply) as for
    /// [`Journal::persist_event`].
    pub fn persist_events(
        &mut self,
        actor: &mut A,
        ctx: &Context,
        events: Vec<A::Event>,
    ) -> Result<std::ops::Range<u64>, PersistenceError> {
        let r = self.store_events(actor, ctx, events);
        self.note_failure(r)
    }

    fn store_events(
        &mut self,
        actor: &mut A,
        ctx: &Context,
        events: Vec<A::Event>,
    ) -> Result<std::ops::Range<u64>, PersistenceError> {
        self.writable()?;
        let first = self.next_index;
        let end = first
            .checked_add(events.len() as u64)
            .ok_or(PersistenceError::IndexOutOfRange(first))?;
        if events.is_empty() {
            return Ok(first..first);
        }
        let records = events.iter().map(|e| e.to_record()).collect();
        let provider = self.provider.clone();
        let result = wait_for_storage(ctx, provider.persist_events(&self.name, first, records))
            .and_then(|r| r);
        if let Err(e) = result {
            self.status = Status::Broken;
            return Err(e);
        }
        self.next_index = end;
        for (index, event) in (first..).zip(events) {
            actor.apply_event(
                event,
                EventMeta {
                    index,
                    recovering: false,
                },
            );
        }
        self.request_snapshot_if_due(ctx, first, end);
        Ok(first..end)
    }

    fn request_snapshot_if_due(&self, ctx: &Context, before: u64, after: u64) {
        let n = self.snapshot_interval;
        if n > 0 && after / n > before / n {
            ctx.send(ctx.self_pid(), RequestSnapshot { index: after });
        }
    }

    /// Stores `actor.snapshot()` at the current index (covering every event so far).
    pub fn persist_snapshot(&mut self, actor: &A, ctx: &Context) -> Result<u64, PersistenceError> {
        self.writable()?;
        let index = self.next_index;
        let record = actor.snapshot().to_record();
        let provider = self.provider.clone();
        wait_for_storage(ctx, provider.persist_snapshot(&self.name, index, record))
            .and_then(|r| r)?;
        Ok(index)
    }

    /// Deletes this actor's events with index `<= inclusive_to` (e.g. those a snapshot covers).
    pub fn delete_events(
        &mut self,
        ctx: &Context,
        inclusive_to: u64,
    ) -> Result<(), PersistenceError> {
        let provider = self.provider.clone();
        wait_for_storage(ctx, provider.delete_events(&self.name, inclusive_to)).and_then(|r| r)
    }

    /// Deletes this actor's snapshots with index `<= inclusive_to`.
    pub fn delete_snapshots(
        &mut self,
        ctx: &Context,
        inclusive_to: u64,
    ) -> Result<(), PersistenceError> {
        let provider = self.provider.clone();
        wait_for_storage(ctx, provider.delete_snapshots(&self.name, inclusive_to)).and_then(|r| r)
    }

    /// Loads the latest snapshot, then replays the events after it, in pages.
    fn recover(&mut self, actor: &mut A, ctx: &Context) -> Result<(), PersistenceError> {
        self.name = self
            .configured_name
            .clone()
            .unwrap_or_else(|| ctx.self_pid().id().to_string());
        self.status = Status::Recovering;
        let recovered = replay::<A::Snapshot, A::Event>(
            ctx,
            &self.provider,
            &self.name,
            self.page_size,
            |item| match item {
                Replayed::Snapshot(s, index) => actor.apply_snapshot(s, index),
                Replayed::Event(e, meta) => actor.apply_event(e, meta),
            },
        )?;
        self.replayed = recovered.replayed;
        self.snapshot_index = recovered.snapshot_index;
        self.next_index = recovered.next_index;
        self.status = Status::Ready;
        Ok(())
    }
}

/// One decoded item of a [`replay`]: the snapshot it starts from (with its index), then each
/// event after it.
#[derive(Debug)]
pub enum Replayed<S, E> {
    /// The latest snapshot, taken after `index` events.
    Snapshot(S, u64),
    /// A stored event (`meta.recovering` is true).
    Event(E, EventMeta),
}

/// What a [`replay`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recovered {
    /// The index the next event gets.
    pub next_index: u64,
    /// The index of the snapshot it started from, if any.
    pub snapshot_index: Option<u64>,
    /// How many events it replayed (after the snapshot).
    pub replayed: u64,
}

/// Recovers the journal `name` from `provider` inside an actor: hands `on` the latest
/// snapshot, then every event after it in index order (read `page_size` at a time), and
/// returns where the journal ends. The checks of [`Persistence::props`]'s recovery apply: a
/// record that does not decode is [`PersistenceError::Corrupt`], a gap after the snapshot or
/// an event is an error, and so is a snapshot beyond the journal's end.
///
/// For runtimes other than [`Persistence::props`] that keep their own state; waits as
/// [`wait_for_storage`] does ([`replay_async`] is the same without holding a thread).
pub fn replay<S: PersistentMessage, E: PersistentMessage>(
    ctx: &Context,
    provider: &Arc<dyn Provider>,
    name: &str,
    page_size: usize,
    on: impl FnMut(Replayed<S, E>),
) -> Result<Recovered, PersistenceError> {
    wait_for_storage(ctx, replay_async(provider, name, page_size, on))?
}

/// [`replay`] as a future, for runtimes that wait for storage without blocking a thread
/// (the persistent grains of `protoactor-cluster` run it on a task that owns their state).
pub async fn replay_async<S: PersistentMessage, E: PersistentMessage>(
    provider: &Arc<dyn Provider>,
    name: &str,
    page_size: usize,
    mut on: impl FnMut(Replayed<S, E>),
) -> Result<Recovered, PersistenceError> {
    let page_size = page_size.max(1);
    let mut out = Recovered::default();
    let mut next = 0;
    // After a snapshot (or an event) the next event must follow without a gap; before
    // the first one, events may have been deleted on purpose.
    let mut expect_contiguous = false;
    // The first read after a snapshot at `s > 0` starts at `s - 1`, the last event the
    // snapshot covers, to tell a journal that reaches the snapshot from one that ends
    // before it (a snapshot beyond the journal); that event is not applied again.
    let mut covered = None;
    if let Some(entry) = provider.get_snapshot(name).await? {
        let snapshot = S::decode_payload(&entry.record.type_name, &entry.record.payload).map_err(
            |source| PersistenceError::Corrupt {
                actor: name.to_string(),
                kind: RecordKind::Snapshot,
                index: entry.index,
                source,
            },
        )?;
        on(Replayed::Snapshot(snapshot, entry.index));
        out.snapshot_index = Some(entry.index);
        next = entry.index;
        expect_contiguous = true;
        covered = entry.index.checked_sub(1);
    }
    let mut from = covered.unwrap_or(next);
    let mut events = Events {
        name,
        next,
        expect_contiguous,
        covered,
        replayed: 0,
    };
    // A provider that reads at once lends its records: they are decoded in place (under its
    // lock, so a page at a time) and applied after; the others return owned pages.
    // The event the snapshot covers is skipped, not decoded; the first record that does not
    // decode ends the page (kept apart: the page holds only events, small).
    let mut decoded: Vec<(u64, E)> = Vec::new();
    let mut undecodable = None;
    loop {
        let lent =
            provider.visit_events_now(name, from, page_size, &mut |index, type_name, payload| {
                if covered == Some(index) {
                    return true;
                }
                match E::decode_payload(type_name, payload) {
                    Ok(event) => {
                        decoded.push((index, event));
                        true
                    }
                    Err(e) => {
                        undecodable = Some((index, e));
                        false
                    }
                }
            });
        let read = match lent {
            Some(n) => {
                let n = n?;
                for (index, event) in decoded.drain(..) {
                    events.event(index, || Ok(event), &mut on)?;
                }
                if let Some((index, e)) = undecodable.take() {
                    events.event(index, || Err(e), &mut on)?;
                }
                n
            }
            None => {
                let page = provider.get_events(name, from, page_size).await?;
                let n = page.len();
                for entry in page {
                    let record = &entry.record;
                    events.event(
                        entry.index,
                        || E::decode_payload(&record.type_name, &record.payload),
                        &mut on,
                    )?;
                }
                n
            }
        };
        if read == 0 {
            if from != events.next {
                // The first read after the snapshot found nothing from `s - 1` on.
                check_journal_reaches(provider, name, page_size, events.next).await?;
            }
            break;
        }
        from = events.next;
    }
    out.replayed = events.replayed;
    out.next_index = events.next;
    Ok(out)
}

/// Where a [`replay`] is in the journal's events.
struct Events<'a> {
    name: &'a str,
    next: u64,
    expect_contiguous: bool,
    covered: Option<u64>,
    replayed: u64,
}

impl Events<'_> {
    /// Checks the event at `index` follows, decodes it and hands it to `on`; skips the event
    /// the snapshot covers (which is not decoded).
    fn event<S, E>(
        &mut self,
        index: u64,
        decode: impl FnOnce() -> Result<E, DecodeError>,
        on: &mut impl FnMut(Replayed<S, E>),
    ) -> Result<(), PersistenceError> {
        if self.covered == Some(index) {
            return Ok(());
        }
        if self.expect_contiguous && index != self.next {
            return Err(self.gap(index));
        }
        let event = match decode() {
            Ok(event) => event,
            Err(source) => return Err(self.corrupt(index, source)),
        };
        on(Replayed::Event(
            event,
            EventMeta {
                index,
                recovering: true,
            },
        ));
        self.replayed += 1;
        self.next = index + 1;
        self.expect_contiguous = true;
        Ok(())
    }

    // The errors are built out of line: `event` runs for every replayed event.
    #[cold]
    #[inline(never)]
    fn gap(&self, index: u64) -> PersistenceError {
        PersistenceError::Storage(format!(
            "journal of {:?} has a gap: expected event {}, found {index}",
            self.name, self.next
        ))
    }

    #[cold]
    #[inline(never)]
    fn corrupt(&self, index: u64, source: DecodeError) -> PersistenceError {
        PersistenceError::Corrupt {
            actor: self.name.to_string(),
            kind: RecordKind::Event,
            index,
            source,
        }
    }
}

/// After a snapshot at `index` with neither the event it covers last (`index - 1`) nor any
/// later one: fine if the covered events were deleted, but if earlier events remain (deletes
/// remove a prefix), the journal ends before the snapshot.
async fn check_journal_reaches(
    provider: &Arc<dyn Provider>,
    name: &str,
    page_size: usize,
    index: u64,
) -> Result<(), PersistenceError> {
    let Some(first) = provider.get_events(name, 0, 1).await?.into_iter().next() else {
        return Ok(());
    };
    // An error path: find where the journal ends, for the message.
    let mut journal_end = first.index + 1;
    loop {
        let page = provider.get_events(name, journal_end, page_size).await?;
        match page.last() {
            Some(last) => journal_end = last.index + 1,
            None => break,
        }
    }
    Err(PersistenceError::SnapshotBeyondJournal {
        actor: name.to_string(),
        index,
        journal_end,
    })
}

/// Waits for a storage future from inside an actor.
///
/// Actors run on the worker threads of a multi-thread tokio runtime and `receive` is
/// synchronous, yet an event must be stored before the actor handles its next message (or
/// state and log could diverge). So the actor blocks its own turn, but through
/// `block_in_place`, which hands the worker's other tasks to another thread: the runtime
/// (and the storage's own tasks, e.g. a PostgreSQL connection) keeps running.
///
/// A future that is ready at once (the in-memory provider) is taken without
/// `block_in_place`, whose hand-over of the worker costs more than the write itself.
///
/// Public for other runtimes of persistent state inside actors: it fails with [`PersistenceError::Runtime`] on a current-thread
/// runtime instead of stalling it.
pub fn wait_for_storage<F: Future>(ctx: &Context, fut: F) -> Result<F::Output, PersistenceError> {
    use std::task::{Context as TaskContext, Poll, Waker};
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            let mut fut = std::pin::pin!(fut);
            // One poll on this thread; a pending future keeps its progress and is polled
            // again (with a real waker) by `block_on`.
            if let Poll::Ready(v) = fut
                .as_mut()
                .poll(&mut TaskContext::from_waker(Waker::noop()))
            {
                return Ok(v);
            }
            protoactor::dispatcher::before_blocking();
            Ok(tokio::task::block_in_place(|| h.block_on(fut)))
        }
        Ok(_) => Err(PersistenceError::Runtime(
            "a persistent actor runs on a current-thread tokio runtime, where waiting for \
             storage would stall it; use a multi-thread runtime (the actor system's default)"
                .into(),
        )),
        // Not on a runtime thread (a synchronized dispatcher): wait on the system's runtime.
        Err(_) => Ok(ctx.system().runtime().block_on(fut)),
    }
}

/// The actor a [`Persistent`] type runs in: recovers it on `Started` and routes messages.
pub struct Persisted<A: Persistent> {
    actor: A,
    journal: Journal<A>,
    replay_complete_delivered: bool,
}

impl<A: Persistent> Persisted<A> {
    /// The wrapped state.
    pub fn inner(&self) -> &A {
        &self.actor
    }
    /// The wrapped state and its journal, e.g. in a `ctx.reenter_after::<Persisted<A>, …>`
    /// continuation (the actor's concrete type is `Persisted<A>`).
    pub fn parts_mut(&mut self) -> (&mut A, &mut Journal<A>) {
        (&mut self.actor, &mut self.journal)
    }
}

fn is_lifecycle(ctx: &Context) -> bool {
    let m = ctx.message();
    m.is::<Stopping>()
        || m.is::<Stopped>()
        || m.is::<Restarting>()
        || m.is::<Terminated>()
        || m.is::<ReceiveTimeout>()
}

impl<A: Persistent> Actor for Persisted<A> {
    fn supervisor_strategy(&self) -> Option<Arc<dyn SupervisorStrategy>> {
        self.actor.supervisor_strategy()
    }

    fn receive(&mut self, ctx: &mut Context) {
        // One look at the message's type (the concrete one: upcast, not the box's): this
        // runs for every command.
        let kind = (ctx.message() as &dyn Any).type_id();
        if kind == TypeId::of::<Started>() {
            match self.journal.recover(&mut self.actor, ctx) {
                Ok(()) => self.deliver(ctx),
                Err(e) => {
                    tracing::error!(actor = %ctx.self_pid(), error = %e, "persistence recovery failed");
                    self.journal.status = Status::Failed;
                    ctx.fail(e.into());
                }
            }
            return;
        }
        if matches!(self.journal.status, Status::Failed | Status::NotRecovered) {
            // The state is not what the log says: keep commands for the restarted incarnation.
            if is_lifecycle(ctx) {
                self.deliver(ctx);
            } else if kind != TypeId::of::<ReplayComplete>() {
                ctx.stash();
            }
            return;
        }
        if kind == TypeId::of::<ReplayComplete>() {
            if !self.replay_complete_delivered {
                self.replay_complete_delivered = true;
                self.deliver(ctx);
            }
            return;
        }
        if kind == TypeId::of::<RequestSnapshot>() {
            // A snapshot only saves replay time: a failed one is logged, the actor goes on.
            if let Err(e) = self.journal.persist_snapshot(&self.actor, ctx) {
                tracing::error!(actor = %ctx.self_pid(), error = %e, "persisting a snapshot failed");
            }
        }
        self.deliver(ctx);
    }
}

thread_local! {
    /// The sender of the message a persistent actor is handling on this thread, and whether
    /// the handler has sent it anything (set by the sender middleware of [`Persistence::props`]).
    static REQUEST: RefCell<Option<(Pid, bool)>> = const { RefCell::new(None) };
}

/// The handling of one message, for [`REQUEST`]; puts back the outer handling's state when
/// it ends (on a synchronized dispatcher one actor's handler runs inside another's send).
struct RequestScope {
    outer: Option<(Pid, bool)>,
}

impl RequestScope {
    fn enter(sender: Option<Pid>) -> Self {
        let outer = REQUEST.with(|r| r.replace(sender.map(|p| (p, false))));
        Self { outer }
    }
    fn answered(&self) -> bool {
        REQUEST.with(|r| r.borrow().as_ref().is_some_and(|(_, sent)| *sent))
    }
}

impl Drop for RequestScope {
    fn drop(&mut self) {
        let outer = self.outer.take();
        REQUEST.with(|r| *r.borrow_mut() = outer);
    }
}

/// Called for every message a persistent actor sends.
fn note_send(target: &Pid) {
    REQUEST.with(|r| {
        if let Some((sender, sent)) = r.borrow_mut().as_mut() {
            if sender == target {
                *sent = true;
            }
        }
    });
}

impl<A: Persistent> Persisted<A> {
    /// Runs the actor's handler; if an event write failed in it and it sent nothing to the
    /// message's sender, the sender gets the error: a requester is not left to its timeout.
    fn deliver(&mut self, ctx: &mut Context) {
        let sender = ctx.sender().cloned();
        let scope = RequestScope::enter(sender.clone());
        self.journal.failed_write = None;
        self.actor.receive(ctx, &mut self.journal);
        let answered = scope.answered();
        drop(scope);
        if let (Some(e), Some(sender)) = (self.journal.failed_write.take(), sender) {
            if !answered {
                ctx.send(&sender, e);
            }
        }
    }
}

/// How persistent actors are stored: the provider, the snapshot interval and the name.
/// Makes their [`Props`](protoactor::Props) (protoactor-go's `persistence.Using(provider)`).
/// The crate documentation has a complete example.
#[derive(Clone)]
pub struct Persistence {
    provider: Arc<dyn Provider>,
    snapshot_interval: u64,
    name: Option<String>,
    page_size: usize,
}

impl Persistence {
    /// Stores in `provider`; no automatic snapshots; the PID's id is the persistence name.
    pub fn using(provider: Arc<dyn Provider>) -> Self {
        Self {
            provider,
            snapshot_interval: 0,
            name: None,
            page_size: 1000,
        }
    }
    /// Sends [`RequestSnapshot`] (which stores a snapshot) every `n` events (0: never).
    pub fn with_snapshot_interval(mut self, n: u64) -> Self {
        self.snapshot_interval = n;
        self
    }
    /// Uses `name` as the persistence name instead of the PID's id.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// How many events recovery reads per storage call (default 1000).
    pub fn with_replay_page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// Props for persistent actors made by `producer` (called again on each restart, so the
    /// new incarnation recovers from storage).
    pub fn props<A, F>(&self, producer: F) -> Props
    where
        A: Persistent,
        F: Fn() -> A + Send + Sync + 'static,
    {
        let config = self.clone();
        Props::from_producer(move || Persisted {
            actor: producer(),
            journal: Journal::new(&config),
            replay_complete_delivered: false,
        })
        .with_receiver_middleware(|next: ReceiverFunc| -> ReceiverFunc {
            // `receive` cannot deliver a second message itself: this middleware follows each
            // `Started` with a `ReplayComplete` (which the wrapper drops if recovery failed).
            Arc::new(move |ctx: &mut Context, env: MessageEnvelope| {
                let started = env.message().is::<Started>();
                next(ctx, env);
                if started {
                    next(ctx, MessageEnvelope::new(ReplayComplete));
                }
            })
        })
        .with_sender_middleware(|next: SenderFunc| -> SenderFunc {
            // Tells `Persisted::deliver` whether the handler answered its requester.
            Arc::new(move |sctx, target: &Pid, env: MessageEnvelope| {
                note_send(target);
                next(sctx, target, env)
            })
        })
    }
}
