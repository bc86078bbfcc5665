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
use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

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
    /// The runner task's waker, stored at its first poll (before the mailbox can go idle,
    /// so before any sender must wake it) and woken by reference: a tokio task's waker is
    /// the same at every poll, so re-registering it (an `AtomicWaker`'s take, clone and
    /// four atomic operations per message) would buy nothing.
    Task(OnceLock<Waker>),
    Inline(Mutex<Option<RunnerCore>>),
}

/// The process behind an actor's PID: its mailbox and how it is scheduled.
pub(crate) struct ActorProcess {
    mailbox: Mailbox,
    sched: ScheduleState,
    dead: AtomicBool,
    mode: RunMode,
    /// Packs beside the two flags (a `usize` would take a word of its own).
    throughput: u32,
    system: ActorSystem,
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
                RunMode::Task(OnceLock::new())
            },
            throughput: dispatcher.throughput().try_into().unwrap_or(u32::MAX),
            system: system.clone(),
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

    /// `pid` (this process's) names what goes to dead letters: the process keeps no id of
    /// its own, to stay small.
    pub(crate) fn post_system(&self, pid: &Pid, msg: SystemMessage) {
        if self.dead.load(Ordering::Acquire) {
            return self.dead_system(pid, msg);
        }
        self.mailbox.system.push(msg);
        self.schedule();
        if self.dead.load(Ordering::SeqCst) {
            self.drain_to_dead_letters(pid);
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
            self.drain_to_dead_letters(pid);
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
                RunMode::Task(w) => {
                    if let Some(w) = w.get() {
                        w.wake_by_ref()
                    }
                }
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
                    let pid = core.ctx.self_pid().clone();
                    let core = guard.take();
                    drop(guard);
                    drop(core);
                    self.finish(&pid);
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
    fn finish(&self, pid: &Pid) {
        self.mark_dead(pid);
    }

    /// From now on sends go straight to dead letters; what is queued goes there too.
    pub(crate) fn mark_dead(&self, pid: &Pid) {
        self.dead.store(true, Ordering::SeqCst);
        self.drain_to_dead_letters(pid);
    }

    fn drain_to_dead_letters(&self, pid: &Pid) {
        if self.mailbox.system.is_empty() && self.mailbox.user.is_empty() {
            return;
        }
        let dl = self.system.registry().dead_letter_process();
        while let Some(m) = self.mailbox.system.pop(0) {
            dl.send_system_message(pid, m);
        }
        while let Some(env) = self.mailbox.user.pop() {
            dl.send_user_message(pid, env);
        }
    }

    fn dead_user(&self, pid: &Pid, env: MessageEnvelope) {
        self.system
            .registry()
            .dead_letter_process()
            .send_user_message(pid, env);
    }

    fn dead_system(&self, pid: &Pid, msg: SystemMessage) {
        self.system
            .registry()
            .dead_letter_process()
            .send_system_message(pid, msg);
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
        self.post_system(pid, message);
    }
    #[inline]
    fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }
    fn mark_dead(&self, pid: &Pid) {
        ActorProcess::mark_dead(self, pid)
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
    /// Messages since the last metrics report (reset every turn while metrics are on, so a
    /// `u32` suffices; it wraps harmlessly while they are off). Not a `u64`: see
    /// `the_runner_future_fits_tokios_smallest_task_cell`.
    processed: u32,
}

impl RunnerCore {
    fn run(&mut self, p: &ActorProcess) -> Outcome {
        loop {
            match catch_unwind(AssertUnwindSafe(|| self.run_batch(p))) {
                Ok(outcome) => {
                    self.record_turn(p);
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

    /// Records the messages processed since the last record (metrics feature). Called at the
    /// end of a turn and before each system message, so a count is on the meter before a
    /// `Stop` handled in the same turn lets a watcher (or a stop future) see the actor gone.
    #[inline]
    fn record_turn(&mut self, p: &ActorProcess) {
        let metrics = p.system.metrics();
        if metrics.enabled() {
            metrics.mailbox_turn(self.processed.into(), p.user_len() as u64);
            self.processed = 0;
        }
    }

    fn run_batch(&mut self, p: &ActorProcess) -> Outcome {
        let mut processed = 0;
        let mut user = p.mailbox.user.taker();
        loop {
            if let Some(sys) = p.mailbox.system.pop(0) {
                user.put_back();
                if self.processed != 0 {
                    self.record_turn(p);
                }
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
            match user.pop((p.throughput - processed) as usize) {
                Some(env) => {
                    processed += 1;
                    self.processed = self.processed.wrapping_add(1);
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
            // Only this module spawns the runner, as its own task: its waker never changes.
            let w = w.get_or_init(|| cx.waker().clone());
            debug_assert!(w.will_wake(cx.waker()));
        }
        loop {
            match this.core.run(p) {
                Outcome::Yield => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Outcome::Stopped => {
                    p.finish(this.core.ctx.self_pid());
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

#[cfg(test)]
mod tests {
    /// Every actor is one tokio task, whose cell (header, scheduler handle, task id, the
    /// future in a `#[repr(C)]` stage enum, trailer) is aligned to 128 bytes on x86_64 and
    /// aarch64: with a 24-byte future it is exactly 128 bytes, one more word and it is 256.
    #[test]
    fn the_runner_future_fits_tokios_smallest_task_cell() {
        let size = std::mem::size_of::<super::RunnerFuture>();
        assert!(size <= 24, "RunnerFuture grew to {size} bytes");
    }
}
