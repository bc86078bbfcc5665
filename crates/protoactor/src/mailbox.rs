//! Mailboxes: a system queue that is always drained first and a user queue, scheduled on
//! a dispatcher with a throughput limit per turn.
//!
//! An actor's mailbox runs as one long-lived task on the dispatcher's tokio runtime. The
//! task parks when the mailbox is empty and a sender wakes it; waking allocates nothing, so
//! a local send costs the message box and a lock-free queue push.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use atomic_waker::AtomicWaker;
use crossbeam_queue::{ArrayQueue, SegQueue};
use crossbeam_utils::Backoff;
use parking_lot::Mutex;

use crate::context::Context;
use crate::dispatcher::Dispatcher;
use crate::message::{Message, MessageBatch, MessageEnvelope};
use crate::pid::Pid;
use crate::process::{Process, SystemMessage};
use crate::system::ActorSystem;

/// Hooks into a mailbox's life (statistics, tracing). All methods default to doing nothing.
pub trait MailboxMiddleware: Send + Sync + 'static {
    /// The mailbox started.
    fn mailbox_started(&self) {}
    /// A user message was posted (called on the sender's thread).
    fn message_posted(&self, _message: &dyn Message) {}
    /// A message is about to be processed (user messages only).
    fn message_received(&self, _message: &dyn Message) {}
    /// The mailbox ran out of messages.
    fn mailbox_empty(&self) {}
}

/// Chooses a priority level (0 lowest to 7 highest) for a message in a priority mailbox.
pub type PriorityFn = Arc<dyn Fn(&dyn Message) -> u8 + Send + Sync>;

/// The default priority level of a priority mailbox.
pub const DEFAULT_PRIORITY: u8 = 4;

#[derive(Clone)]
enum QueueKind {
    Unbounded,
    Bounded(usize),
    BoundedDropping(usize),
    Priority(PriorityFn),
}

/// Which mailbox an actor gets (set with [`Props::with_mailbox`](crate::Props::with_mailbox)).
///
/// ```
/// use protoactor::MailboxConfig;
/// let m = MailboxConfig::bounded(110);
/// let p = MailboxConfig::priority(|m| if m.is::<&str>() { 7 } else { 4 });
/// # let _ = (m, p);
/// ```
#[derive(Clone)]
pub struct MailboxConfig {
    kind: QueueKind,
    middleware: Vec<Arc<dyn MailboxMiddleware>>,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        Self::unbounded()
    }
}

impl std::fmt::Debug for MailboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = match &self.kind {
            QueueKind::Unbounded => "unbounded".to_string(),
            QueueKind::Bounded(n) => format!("bounded({n})"),
            QueueKind::BoundedDropping(n) => format!("bounded_dropping({n})"),
            QueueKind::Priority(_) => "priority".to_string(),
        };
        write!(f, "MailboxConfig({k})")
    }
}

impl MailboxConfig {
    /// An unbounded lock-free queue (the default).
    pub fn unbounded() -> Self {
        Self {
            kind: QueueKind::Unbounded,
            middleware: Vec::new(),
        }
    }
    /// A queue of `capacity`; a sender waits while it is full.
    pub fn bounded(capacity: usize) -> Self {
        Self {
            kind: QueueKind::Bounded(capacity.max(1)),
            middleware: Vec::new(),
        }
    }
    /// A queue of `capacity` that drops its oldest message (to dead letters) when full.
    pub fn bounded_dropping(capacity: usize) -> Self {
        Self {
            kind: QueueKind::BoundedDropping(capacity.max(1)),
            middleware: Vec::new(),
        }
    }
    /// An unbounded queue with 8 priority levels, highest first; `level` picks a message's
    /// level (values above 7 count as 7).
    pub fn priority<F>(level: F) -> Self
    where
        F: Fn(&dyn Message) -> u8 + Send + Sync + 'static,
    {
        Self {
            kind: QueueKind::Priority(Arc::new(level)),
            middleware: Vec::new(),
        }
    }
    /// Adds a mailbox middleware.
    pub fn with_middleware(mut self, middleware: impl MailboxMiddleware) -> Self {
        self.middleware.push(Arc::new(middleware));
        self
    }

    pub(crate) fn create(&self) -> Mailbox {
        let user = match &self.kind {
            QueueKind::Unbounded => UserQueue::Unbounded(LockedQueue::new()),
            QueueKind::Bounded(n) => UserQueue::Bounded(Box::new(ArrayQueue::new(*n))),
            QueueKind::BoundedDropping(n) => UserQueue::Dropping(Box::new(ArrayQueue::new(*n))),
            QueueKind::Priority(f) => UserQueue::Priority(
                Box::new(std::array::from_fn(|_| SegQueue::new())),
                f.clone(),
            ),
        };
        Mailbox {
            system: LockedQueue::new(),
            user,
            middleware: self.middleware.clone().into_boxed_slice(),
        }
    }
}

/// The bounded queues are boxed: `ArrayQueue` is cache-padded (128-byte aligned, 384
/// bytes), and inline it would make every actor's process that big, bounded or not.
enum UserQueue {
    Unbounded(LockedQueue<MessageEnvelope>),
    Bounded(Box<ArrayQueue<MessageEnvelope>>),
    Dropping(Box<ArrayQueue<MessageEnvelope>>),
    Priority(Box<[SegQueue<MessageEnvelope>; 8]>, PriorityFn),
}

impl UserQueue {
    #[inline]
    fn pop(&self) -> Option<MessageEnvelope> {
        match self {
            UserQueue::Unbounded(q) => q.pop(USER_QUEUE_KEEP),
            UserQueue::Bounded(q) | UserQueue::Dropping(q) => q.pop(),
            UserQueue::Priority(qs, _) => qs.iter().rev().find_map(|q| q.pop()),
        }
    }
    fn is_empty(&self) -> bool {
        match self {
            UserQueue::Unbounded(q) => q.is_empty(),
            UserQueue::Bounded(q) | UserQueue::Dropping(q) => q.is_empty(),
            UserQueue::Priority(qs, _) => qs.iter().all(|q| q.is_empty()),
        }
    }
    fn len(&self) -> usize {
        match self {
            UserQueue::Unbounded(q) => q.len(),
            UserQueue::Bounded(q) | UserQueue::Dropping(q) => q.len(),
            UserQueue::Priority(qs, _) => qs.iter().map(|q| q.len()).sum(),
        }
    }
}

/// A locked deque with an atomic length, used for the system queue and for unbounded user
/// queues. It keeps idle actors small: a `SegQueue` holds 256 bytes inline plus a 31-slot
/// block (1.2 KiB of envelopes, 2.5 KiB of system messages) for the rest of the actor's
/// life once one message was pushed, while this holds one message inline and a buffer that
/// is allocated only when two or more wait, and freed when drained. The inline slot makes
/// the common case (one message for an idle actor: `Started`, a request, a `Terminated`)
/// allocation-free. The length keeps the runner's per-message "anything there?" check a
/// single atomic load.
struct LockedQueue<T> {
    queue: Mutex<Slots<T>>,
    len: std::sync::atomic::AtomicUsize,
}

/// FIFO: `head` is older than everything in `rest`, since a push fills `head` only when
/// both are empty.
struct Slots<T> {
    head: Option<T>,
    rest: std::collections::VecDeque<T>,
}

impl<T> LockedQueue<T> {
    fn new() -> Self {
        Self {
            queue: Mutex::new(Slots {
                head: None,
                rest: std::collections::VecDeque::new(),
            }),
            len: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    #[inline]
    fn push(&self, msg: T) {
        let mut q = self.queue.lock();
        if q.head.is_none() && q.rest.is_empty() {
            q.head = Some(msg);
        } else {
            q.rest.push_back(msg);
        }
        // Counted before the sender's schedule request, whose SeqCst fence pairs with
        // the runner's `set_idle` fence (see `sched`).
        self.len.fetch_add(1, Ordering::SeqCst);
    }

    /// Pops the oldest message; once drained, frees a buffer larger than `keep` slots.
    #[inline]
    fn pop(&self, keep: usize) -> Option<T> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut q = self.queue.lock();
        let msg = q.head.take().or_else(|| q.rest.pop_front());
        if msg.is_some() {
            self.len.fetch_sub(1, Ordering::SeqCst);
        }
        if q.rest.is_empty() && q.rest.capacity() > keep {
            q.rest = std::collections::VecDeque::new();
        }
        msg
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.len.load(Ordering::SeqCst) == 0
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod locked_queue_tests {
    use super::LockedQueue;

    /// Order holds across the inline slot and the buffer, in every interleaving of pushes
    /// and pops, and a drained buffer above `keep` is freed.
    #[test]
    fn fifo_across_the_inline_slot_and_the_buffer() {
        let q = LockedQueue::new();
        let (mut next_in, mut next_out) = (0u32, 0u32);
        for round in 0..50u32 {
            for _ in 0..(round % 7) {
                q.push(next_in);
                next_in += 1;
            }
            for _ in 0..(round % 5) {
                if let Some(v) = q.pop(2) {
                    assert_eq!(v, next_out);
                    next_out += 1;
                }
            }
            assert_eq!(q.len(), (next_in - next_out) as usize);
        }
        while let Some(v) = q.pop(2) {
            assert_eq!(v, next_out);
            next_out += 1;
        }
        assert_eq!(next_out, next_in);
        assert!(q.is_empty());
        assert_eq!(q.queue.lock().rest.capacity(), 0, "drained buffer freed");
    }
}

/// Buffer slots an idle unbounded mailbox may keep (bigger ones are freed when drained).
const USER_QUEUE_KEEP: usize = 16;

pub(crate) struct Mailbox {
    system: LockedQueue<SystemMessage>,
    user: UserQueue,
    middleware: Box<[Arc<dyn MailboxMiddleware>]>,
}

/// The scheduling state of a mailbox: idle, or scheduled (a runner owns it).
///
/// Protocol: a sender pushes, then calls [`ScheduleState::request`]; exactly one caller
/// that finds the mailbox idle wins and must run it. The runner, out of messages, calls
/// [`ScheduleState::set_idle`], then re-checks the queues and calls
/// [`ScheduleState::try_reclaim`] if they are not empty. The two SeqCst fences make sure a
/// push racing with `set_idle` is seen by one of the two sides (checked with loom).
pub(crate) mod sched {
    #[cfg(loom)]
    use loom::sync::atomic::{fence, AtomicU8, Ordering};
    #[cfg(not(loom))]
    use std::sync::atomic::{fence, AtomicU8, Ordering};

    const IDLE: u8 = 0;
    const SCHEDULED: u8 = 1;

    pub(crate) struct ScheduleState(AtomicU8);

    impl ScheduleState {
        /// Starts scheduled: the creator runs the mailbox first.
        pub(crate) fn new_scheduled() -> Self {
            Self(AtomicU8::new(SCHEDULED))
        }
        /// After a push: true if the caller must schedule the runner.
        #[inline]
        pub(crate) fn request(&self) -> bool {
            fence(Ordering::SeqCst);
            self.0.load(Ordering::Relaxed) == IDLE
                && self
                    .0
                    .compare_exchange(IDLE, SCHEDULED, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
        }
        /// The runner found no work.
        #[inline]
        pub(crate) fn set_idle(&self) {
            self.0.store(IDLE, Ordering::Release);
            fence(Ordering::SeqCst);
        }
        /// The runner saw work after going idle: true if it may keep running.
        #[inline]
        pub(crate) fn try_reclaim(&self) -> bool {
            self.0
                .compare_exchange(IDLE, SCHEDULED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        }
        #[cfg(all(test, loom))]
        pub(crate) fn is_scheduled(&self) -> bool {
            self.0.load(Ordering::SeqCst) == SCHEDULED
        }
    }

    #[cfg(all(test, loom))]
    mod loom_tests {
        use super::*;
        use loom::sync::atomic::AtomicUsize;
        use loom::sync::Arc;

        fn drain(q: &AtomicUsize, consumed: &AtomicUsize) {
            while q
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
            {
                consumed.fetch_add(1, Ordering::Relaxed);
            }
        }

        /// No message is ever left in an idle mailbox: either the runner sees it or a sender
        /// wins the right (and duty) to schedule it.
        #[test]
        fn no_lost_wakeups() {
            loom::model(|| {
                let state = Arc::new(ScheduleState::new_scheduled());
                let queue = Arc::new(AtomicUsize::new(0));
                let consumed = Arc::new(AtomicUsize::new(0));
                let won = Arc::new(AtomicUsize::new(0));
                let producers: Vec<_> = (0..2)
                    .map(|_| {
                        let (s, q, w) = (state.clone(), queue.clone(), won.clone());
                        loom::thread::spawn(move || {
                            q.fetch_add(1, Ordering::Release);
                            if s.request() {
                                w.fetch_add(1, Ordering::Relaxed);
                            }
                        })
                    })
                    .collect();
                // the runner, scheduled from the start
                loop {
                    drain(&queue, &consumed);
                    state.set_idle();
                    if queue.load(Ordering::Acquire) > 0 && state.try_reclaim() {
                        continue;
                    }
                    break;
                }
                for p in producers {
                    p.join().unwrap();
                }
                if queue.load(Ordering::SeqCst) > 0 {
                    // someone must own the duty to run the mailbox
                    assert!(state.is_scheduled());
                    assert!(won.load(Ordering::SeqCst) > 0);
                    drain(&queue, &consumed);
                }
                assert_eq!(consumed.load(Ordering::SeqCst), 2);
            });
        }
    }
}

use sched::ScheduleState;

enum RunMode {
    Task(AtomicWaker),
    Inline(Mutex<Option<RunnerCore>>),
}

/// The process behind an actor's PID: its mailbox and how it is scheduled.
pub(crate) struct ActorProcess {
    mailbox: Mailbox,
    sched: ScheduleState,
    dead: AtomicBool,
    mode: RunMode,
    throughput: usize,
    system: ActorSystem,
    /// The id, for naming leftovers sent to dead letters (a PID here would be a cycle).
    id: std::sync::OnceLock<Arc<str>>,
}

impl ActorProcess {
    pub(crate) fn new(
        system: &ActorSystem,
        config: &MailboxConfig,
        dispatcher: &Dispatcher,
    ) -> Self {
        ActorProcess {
            mailbox: config.create(),
            sched: ScheduleState::new_scheduled(),
            dead: AtomicBool::new(false),
            mode: if dispatcher.is_synchronized() {
                RunMode::Inline(Mutex::new(None))
            } else {
                RunMode::Task(AtomicWaker::new())
            },
            throughput: dispatcher.throughput(),
            system: system.clone(),
            id: std::sync::OnceLock::new(),
        }
    }

    /// Starts running the mailbox with the actor's context (Started is already queued).
    pub(crate) fn start(self: &Arc<Self>, ctx: Box<Context>, dispatcher: &Dispatcher) {
        for m in self.mailbox.middleware.iter() {
            m.mailbox_started();
        }
        let core = RunnerCore {
            ctx,
            suspended: false,
            processed: 0,
        };
        match &self.mode {
            RunMode::Task(_) => {
                let fut = RunnerFuture {
                    process: self.clone(),
                    core,
                };
                dispatcher.handle(&self.system).spawn(fut);
            }
            RunMode::Inline(slot) => {
                *slot.lock() = Some(core);
                self.run_inline();
            }
        }
    }

    pub(crate) fn post_system(&self, msg: SystemMessage) {
        if self.dead.load(Ordering::Acquire) {
            return self.dead_system(msg);
        }
        self.mailbox.system.push(msg);
        self.schedule();
        if self.dead.load(Ordering::SeqCst) {
            self.drain_to_dead_letters();
        }
    }

    pub(crate) fn post_user(&self, pid: &Pid, mut env: MessageEnvelope) {
        if self.dead.load(Ordering::Acquire) {
            return self.dead_user(pid, env);
        }
        for m in self.mailbox.middleware.iter() {
            m.message_posted(&*env.message);
        }
        if let Some(batch) = env.message.downcast_mut::<MessageBatch>() {
            for msg in batch.take_messages() {
                self.push_user(pid, MessageEnvelope::from_boxed(msg));
            }
        }
        self.push_user(pid, env);
        self.schedule();
        if self.dead.load(Ordering::SeqCst) {
            self.drain_to_dead_letters();
        }
    }

    #[inline]
    fn push_user(&self, pid: &Pid, env: MessageEnvelope) {
        match &self.mailbox.user {
            UserQueue::Unbounded(q) => q.push(env),
            UserQueue::Priority(qs, level) => {
                let l = level(&*env.message).min(7) as usize;
                qs[l].push(env)
            }
            UserQueue::Dropping(q) => {
                if let Some(old) = q.force_push(env) {
                    tracing::debug!(pid = %pid, "bounded-dropping mailbox full: oldest message dropped to dead letters");
                    self.dead_user(pid, old);
                }
            }
            UserQueue::Bounded(q) => {
                if let Err(env) = q.push(env) {
                    if let Err(env) = self.wait_for_room(q, env) {
                        self.dead_user(pid, env);
                    }
                }
            }
        }
    }

    /// A bounded mailbox is full: wait (as protoactor-go's sender does) until there is room,
    /// without stalling the runtime, unless the actor dies meanwhile.
    fn wait_for_room(
        &self,
        q: &ArrayQueue<MessageEnvelope>,
        env: MessageEnvelope,
    ) -> Result<(), MessageEnvelope> {
        // The runner may be parked on our own turn; make sure it will drain.
        self.schedule();
        let mut slot = Some(env);
        let mut wait = || {
            let backoff = Backoff::new();
            loop {
                match q.push(slot.take().expect("filled")) {
                    Ok(()) => return Ok(()),
                    Err(e) => slot = Some(e),
                }
                if self.dead.load(Ordering::Acquire) {
                    return Err(slot.take().expect("filled"));
                }
                if backoff.is_completed() {
                    std::thread::sleep(Duration::from_micros(50));
                } else {
                    backoff.snooze();
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    }

    #[inline]
    fn schedule(&self) {
        if self.sched.request() {
            match &self.mode {
                RunMode::Task(w) => w.wake(),
                RunMode::Inline(_) => self.run_inline(),
            }
        }
    }

    fn run_inline(&self) {
        let RunMode::Inline(slot) = &self.mode else {
            return;
        };
        let mut guard = slot.lock();
        let Some(core) = guard.as_mut() else {
            return;
        };
        loop {
            match core.run(self) {
                Outcome::Yield => continue,
                Outcome::Stopped => {
                    let core = guard.take();
                    drop(guard);
                    drop(core);
                    self.finish();
                    return;
                }
                Outcome::Idle => {
                    self.sched.set_idle();
                    if self.has_work(core.suspended) && self.sched.try_reclaim() {
                        continue;
                    }
                    self.mailbox_empty(core.suspended);
                    return;
                }
            }
        }
    }

    fn has_work(&self, suspended: bool) -> bool {
        !self.mailbox.system.is_empty() || (!suspended && !self.mailbox.user.is_empty())
    }

    fn mailbox_empty(&self, suspended: bool) {
        if !suspended && !self.mailbox.middleware.is_empty() && self.mailbox.user.is_empty() {
            for m in self.mailbox.middleware.iter() {
                m.mailbox_empty();
            }
        }
    }

    /// The actor stopped: mark the process dead and send what is left to dead letters.
    fn finish(&self) {
        self.mark_dead();
    }

    /// From now on sends go straight to dead letters; what is queued goes there too.
    pub(crate) fn mark_dead(&self) {
        self.dead.store(true, Ordering::SeqCst);
        self.drain_to_dead_letters();
    }

    pub(crate) fn set_id(&self, id: Arc<str>) {
        let _ = self.id.set(id);
    }

    fn own_pid(&self) -> Pid {
        let id = self.id.get().cloned().unwrap_or_else(|| Arc::from("?"));
        Pid::with_parts(self.system.registry().address(), id, 0)
    }

    fn drain_to_dead_letters(&self) {
        if self.mailbox.system.is_empty() && self.mailbox.user.is_empty() {
            return;
        }
        let (dl, pid) = (self.system.registry().dead_letter_process(), self.own_pid());
        while let Some(m) = self.mailbox.system.pop(0) {
            dl.send_system_message(&pid, m);
        }
        while let Some(env) = self.mailbox.user.pop() {
            dl.send_user_message(&pid, env);
        }
    }

    fn dead_user(&self, pid: &Pid, env: MessageEnvelope) {
        self.system
            .registry()
            .dead_letter_process()
            .send_user_message(pid, env);
    }

    fn dead_system(&self, msg: SystemMessage) {
        self.system
            .registry()
            .dead_letter_process()
            .send_system_message(&self.own_pid(), msg);
    }

    /// How many user messages are queued.
    fn user_len(&self) -> usize {
        self.mailbox.user.len()
    }
}

impl Process for ActorProcess {
    #[inline]
    fn send_user_message(&self, pid: &Pid, envelope: MessageEnvelope) {
        self.post_user(pid, envelope);
    }
    fn send_system_message(&self, pid: &Pid, message: SystemMessage) {
        if self.dead.load(Ordering::Acquire) {
            // Answer as the dead-letter process does, but naming this PID.
            return self
                .system
                .registry()
                .dead_letter_process()
                .send_system_message(pid, message);
        }
        self.post_system(message);
    }
    #[inline]
    fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }
}

enum Outcome {
    Idle,
    Yield,
    Stopped,
}

/// The actor's private side: its context (which owns the actor) and the suspension flag.
/// Only the runner that holds the mailbox's schedule touches it.
pub(crate) struct RunnerCore {
    ctx: Box<Context>,
    suspended: bool,
    processed: u64,
}

impl RunnerCore {
    fn run(&mut self, p: &ActorProcess) -> Outcome {
        loop {
            match catch_unwind(AssertUnwindSafe(|| self.run_batch(p))) {
                Ok(outcome) => {
                    let metrics = p.system.metrics();
                    if metrics.enabled() {
                        metrics.mailbox_turn(self.processed, p.user_len() as u64);
                        self.processed = 0;
                    }
                    return outcome;
                }
                Err(payload) => {
                    // A panic outside the actor's own receive (middleware, a supervisor
                    // decider): treat it like a failure of this actor.
                    self.ctx.escalate_panic(payload);
                }
            }
        }
    }

    fn run_batch(&mut self, p: &ActorProcess) -> Outcome {
        let mut processed = 0;
        loop {
            if let Some(sys) = p.mailbox.system.pop(0) {
                match sys {
                    SystemMessage::SuspendMailbox => self.suspended = true,
                    SystemMessage::ResumeMailbox => self.suspended = false,
                    other => self.ctx.invoke_system(other),
                }
                if self.ctx.is_stopped() {
                    return Outcome::Stopped;
                }
                continue;
            }
            if self.suspended {
                return Outcome::Idle;
            }
            if processed >= p.throughput {
                return Outcome::Yield;
            }
            match p.mailbox.user.pop() {
                Some(env) => {
                    processed += 1;
                    self.processed += 1;
                    for m in p.mailbox.middleware.iter() {
                        m.message_received(&*env.message);
                    }
                    self.ctx.invoke_user(env);
                    if self.ctx.is_stopped() {
                        return Outcome::Stopped;
                    }
                }
                None => return Outcome::Idle,
            }
        }
    }
}

struct RunnerFuture {
    process: Arc<ActorProcess>,
    core: RunnerCore,
}

impl Future for RunnerFuture {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        let p = &*this.process;
        if let RunMode::Task(w) = &p.mode {
            w.register(cx.waker());
        }
        loop {
            match this.core.run(p) {
                Outcome::Yield => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Outcome::Stopped => {
                    p.finish();
                    return Poll::Ready(());
                }
                Outcome::Idle => {
                    p.sched.set_idle();
                    if p.has_work(this.core.suspended) && p.sched.try_reclaim() {
                        continue;
                    }
                    p.mailbox_empty(this.core.suspended);
                    return Poll::Pending;
                }
            }
        }
    }
}
