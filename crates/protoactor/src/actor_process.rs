//! The process behind an actor's PID: it queues messages in the actor's mailbox and runs
//! the actor's context from it on the dispatcher, with a throughput limit per turn.
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
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::Backoff;
use parking_lot::Mutex;

use crate::context::Context;
use crate::dispatcher::Dispatcher;
use crate::mailbox::sched::ScheduleState;
use crate::mailbox::{Mailbox, MailboxConfig, UserQueue};
use crate::message::{MessageBatch, MessageEnvelope};
use crate::pid::Pid;
use crate::process::{Process, SystemMessage};
use crate::system::ActorSystem;

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
        let mut user = p.mailbox.user.taker();
        loop {
            if let Some(sys) = p.mailbox.system.pop(0) {
                user.put_back();
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
            match user.pop(p.throughput - processed) {
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
