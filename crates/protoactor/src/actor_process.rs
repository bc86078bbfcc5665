//! The process behind an actor's PID: it queues messages in the actor's mailbox and runs
//! the actor's context from it on the dispatcher, with a throughput limit per turn.
//!
//! An actor's mailbox runs as one long-lived task on the dispatcher's tokio runtime. The
//! task parks when the mailbox is empty and a sender wakes it; waking allocates nothing, so
//! a local send costs the message box (none for a message of at most a word, stored in its
//! envelope) and a queue push. On the system's dispatcher, a sender that is itself a
//! mailbox's turn hands the woken mailbox to its own task instead,
//! which runs it when the turn ends (`dispatcher/hand_off.rs`); so the actor's context
//! lives in the process, not in the task, and moves to whichever task runs the turn.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::atomic::AtomicCell;
use crossbeam_utils::Backoff;

use crate::context::{ActorSlot, Context};
use crate::dispatcher::{before_blocking, try_hand_off, Dispatcher, HandOff, RunnerScope};
use crate::mailbox::sched::ScheduleState;
use crate::mailbox::{Mailbox, MailboxConfig, UserQueue};
use crate::message::{MessageBatch, MessageEnvelope};
use crate::pid::Pid;
use crate::process::{Process, SystemMessage};
use crate::system::ActorSystem;

/// How the mailbox runs (fixed at spawn).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Its own tokio task, woken by the sender that wins the schedule.
    Task,
    /// Its own task on the system's runtime, and a sender running in another runner of
    /// the system on the same thread hands it off instead of waking it (see
    /// `dispatcher/hand_off.rs`).
    HandOff,
    /// On the sender's thread (the synchronized dispatcher).
    Inline,
}

/// `ActorProcess::flags`: the mailbox is suspended (only the runner holding the schedule
/// reads or writes it).
const SUSPENDED: u8 = 1;
/// `ActorProcess::flags`: the runner task was dropped without finishing (its runtime shut
/// down); whoever puts the context back afterwards drops it.
const DETACHED: u8 = 2;

/// The process behind an actor's PID: its mailbox and how it is scheduled.
pub(crate) struct ActorProcess {
    mailbox: Mailbox,
    sched: ScheduleState,
    dead: AtomicBool,
    flags: AtomicU8,
    mode: Mode,
    /// Packs beside the flags (a `usize` would take a word of its own).
    throughput: u32,
    /// The runner task's waker, stored at its first poll (before the mailbox can go idle,
    /// so before any sender must wake it) and woken by reference: a tokio task's waker is
    /// the same at every poll, so re-registering it (an `AtomicWaker`'s take, clone and
    /// four atomic operations per message) would buy nothing. Unused inline.
    waker: OnceLock<Waker>,
    /// The actor's context while no runner holds it. Whoever holds the schedule takes it
    /// for the turn and puts it back before giving the schedule up, so a hand-off can run
    /// the turn in another task (one word: a lock-free swap).
    core: AtomicCell<Option<Box<Context>>>,
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
            flags: AtomicU8::new(0),
            mode: if dispatcher.is_synchronized() {
                Mode::Inline
            } else if dispatcher.is_system() {
                Mode::HandOff
            } else {
                Mode::Task
            },
            throughput: dispatcher.throughput().try_into().unwrap_or(u32::MAX),
            waker: OnceLock::new(),
            core: AtomicCell::new(None),
            system: system.clone(),
        }
    }

    /// Starts running the mailbox with the actor's context (Started is already queued).
    pub(crate) fn start(self: &Arc<Self>, ctx: Box<Context>, dispatcher: &Dispatcher) {
        for m in self.mailbox.middleware().iter() {
            m.mailbox_started();
        }
        self.core.store(Some(ctx));
        match self.mode {
            Mode::Task | Mode::HandOff => {
                let fut = RunnerFuture {
                    process: self.clone(),
                };
                dispatcher.handle(&self.system).spawn(fut);
            }
            Mode::Inline => self.run_inline(),
        }
    }

    /// `pid` (this process's) names what goes to dead letters: the process keeps no id of
    /// its own, to stay small.
    pub(crate) fn post_system(&self, pid: &Pid, msg: SystemMessage) {
        if self.dead.load(Ordering::Acquire) {
            return self.dead_system(pid, msg);
        }
        self.mailbox.system().push(msg);
        self.pushed(pid);
    }

    pub(crate) fn post_user(&self, pid: &Pid, mut env: MessageEnvelope) {
        if self.dead.load(Ordering::Acquire) {
            return self.dead_user(pid, env);
        }
        if !self.mailbox.middleware().is_empty() {
            env = self.tell_posted(env);
        }
        if let Some(batch) = env.message.batch_mut() {
            self.push_batch(pid, batch);
        }
        self.push_user(pid, env);
        self.pushed(pid);
    }

    /// After a push: the mailbox scheduled, and if the actor died meanwhile (its runner
    /// marked it dead after our check), what was queued goes to dead letters.
    #[inline(always)]
    fn pushed(&self, pid: &Pid) {
        self.schedule(pid);
        if self.dead.load(Ordering::SeqCst) {
            self.drain_to_dead_letters(pid);
        }
    }

    /// Tells the mailbox middleware of a posted message (out of line, the envelope moved in
    /// and out: reading an envelope's message hands the envelope's address to a call when
    /// the message is stored inline, and a call that may keep the address made every
    /// `post_user` copy its envelope once more).
    #[inline(never)]
    fn tell_posted(&self, env: MessageEnvelope) -> MessageEnvelope {
        for m in self.mailbox.middleware().iter() {
            m.message_posted(env.message());
        }
        env
    }

    /// A `MessageBatch`'s messages, queued before the batch itself. An unbounded mailbox
    /// queues them as one entry (the batch's part), which its runner hands out one by one
    /// (`Taken::pop_unrolling`); other mailboxes queue them one by one (a bounded queue may
    /// have to wait for room, a priority one sorts each). Out of line: the common send does
    /// not carry this code.
    #[cold]
    #[inline(never)]
    fn push_batch(&self, pid: &Pid, batch: &mut MessageBatch) {
        match self.mailbox.user() {
            UserQueue::Unbounded(q) => {
                if let Some(part) = batch.take_part() {
                    q.push_batch(part);
                }
            }
            _ => {
                for env in batch.envelopes() {
                    self.push_user(pid, env);
                }
            }
        }
    }

    // Forced: left to itself, LLVM kept it a call of its own (callgrind).
    #[inline(always)]
    fn push_user(&self, pid: &Pid, env: MessageEnvelope) {
        match self.mailbox.user() {
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
        // A mailbox this thread was to run after the current turn (this one, maybe) must
        // run elsewhere while we wait; and the runner may be parked: make sure it drains.
        before_blocking();
        if self.sched.request() {
            self.wake_now();
        }
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

    /// After a push: if the sender won the schedule, runs the mailbox, hands it off to the
    /// runner on this thread, or wakes its task.
    #[inline]
    fn schedule(&self, pid: &Pid) {
        // Inline only the check: a busy mailbox (the common case under load) costs the
        // sender no call.
        if self.sched.request() {
            self.won(pid);
        }
    }

    #[inline(never)]
    fn won(&self, pid: &Pid) {
        if self.mode == Mode::HandOff && self.hand_off(pid) {
            return;
        }
        self.wake_now();
    }

    /// Runs the won mailbox now: inline on this thread, or by waking its task.
    fn wake_now(&self) {
        match self.mode {
            Mode::Task | Mode::HandOff => {
                if let Some(w) = self.waker.get() {
                    w.wake_by_ref()
                }
            }
            Mode::Inline => self.run_inline(),
        }
    }

    /// Leaves this won mailbox to the runner polling on this thread, if there is one of
    /// this system with a free slot. `pid` (this process's) carries the `Arc` to leave.
    #[inline]
    fn hand_off(&self, pid: &Pid) -> bool {
        try_hand_off(self.system.identity(), || {
            let me = pid
                .resolved_any()?
                .clone()
                .downcast::<ActorProcess>()
                .ok()?;
            if !std::ptr::eq(Arc::as_ptr(&me), self) {
                return None;
            }
            Some(me as Arc<dyn HandOff>)
        })
    }

    fn is_suspended(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & SUSPENDED != 0
    }

    fn set_suspended(&self, on: bool) {
        if on {
            self.flags.fetch_or(SUSPENDED, Ordering::Relaxed);
        } else {
            self.flags.fetch_and(!SUSPENDED, Ordering::Relaxed);
        }
    }

    /// Runs turns with the context `ctx` (the caller holds the schedule) until the mailbox
    /// is idle (the context is back in `core`, the schedule given up), the turn used up its
    /// throughput (the context is back, the schedule still held), or the actor stopped.
    fn drive(&self, mut ctx: Box<Context>) -> Driven {
        loop {
            match self.run_turn(&mut ctx) {
                Outcome::Yield => {
                    self.core.store(Some(ctx));
                    return Driven::Yield;
                }
                Outcome::Stopped => return Driven::Stopped(ctx),
                Outcome::Idle => {
                    let suspended = self.is_suspended();
                    // Back before the schedule is given up: the next holder takes it.
                    self.core.store(Some(ctx));
                    self.sched.set_idle();
                    if self.has_work(suspended) && self.sched.try_reclaim() {
                        match self.core.take() {
                            Some(c) => {
                                ctx = c;
                                continue;
                            }
                            // Dropped with its runner task (the runtime shut down).
                            None => return Driven::Idle,
                        }
                    }
                    self.mailbox_empty(suspended);
                    return Driven::Idle;
                }
            }
        }
    }

    fn run_inline(&self) {
        let Some(mut ctx) = self.core.take() else {
            return;
        };
        loop {
            match self.drive(ctx) {
                Driven::Yield => match self.core.take() {
                    Some(c) => ctx = c,
                    None => return,
                },
                Driven::Stopped(ctx) => {
                    let pid = ctx.self_pid().clone();
                    drop(ctx);
                    self.finish(&pid);
                    return;
                }
                Driven::Idle => return,
            }
        }
    }

    /// One turn: system messages first, then up to `throughput` user messages.
    // Forced: a call of its own per turn otherwise (in ping-pong, a turn per message).
    #[inline(always)]
    fn run_turn(&self, ctx: &mut Context) -> Outcome {
        // Messages since the last metrics report (see `record_turn`).
        let mut since_report = 0u32;
        // The actor while user messages run (`Context::hold_actor`). Outside the
        // `catch_unwind`: a panic in `receive` leaves it here, to put back before the failure
        // is handled.
        let mut held = None;
        loop {
            match catch_unwind(AssertUnwindSafe(|| {
                let outcome = self.run_batch(ctx, &mut since_report, &mut held);
                ctx.return_actor(&mut held);
                outcome
            })) {
                Ok(outcome) => {
                    self.record_turn(&mut since_report);
                    return outcome;
                }
                Err(payload) => {
                    // A panic in the actor's receive, or outside it (middleware, a
                    // supervisor decider): a failure of this actor.
                    ctx.return_actor(&mut held);
                    ctx.escalate_panic(payload);
                }
            }
        }
    }

    /// Records the messages processed since the last record (metrics feature). Called at the
    /// end of a turn and before each system message, so a count is on the meter before a
    /// `Stop` handled in the same turn lets a watcher (or a stop future) see the actor gone.
    #[inline]
    fn record_turn(&self, since_report: &mut u32) {
        let metrics = self.system.metrics();
        if metrics.enabled() {
            metrics.mailbox_turn((*since_report).into(), self.user_len() as u64);
            *since_report = 0;
        }
    }

    /// Up to `throughput` user messages, system messages first; the caller puts `held` (the
    /// actor, held across user messages) back afterwards.
    fn run_batch(
        &self,
        ctx: &mut Context,
        since_report: &mut u32,
        held: &mut Option<ActorSlot>,
    ) -> Outcome {
        let mut processed = 0;
        let mut user = self.mailbox.user().taker();
        // Fixed when the mailbox is made: read once per turn, not per message.
        let tell = !self.mailbox.middleware().is_empty();
        loop {
            if let Some(sys) = self
                .mailbox
                .system()
                .has_any()
                .then(|| self.mailbox.system().pop(0))
                .flatten()
            {
                user.put_back();
                ctx.return_actor(held);
                if *since_report != 0 {
                    self.record_turn(since_report);
                }
                match sys {
                    SystemMessage::SuspendMailbox => self.set_suspended(true),
                    SystemMessage::ResumeMailbox => self.set_suspended(false),
                    other => ctx.invoke_system(other),
                }
                if ctx.is_stopped() {
                    return Outcome::Stopped;
                }
                continue;
            }
            if self.is_suspended() {
                return Outcome::Idle;
            }
            if processed >= self.throughput {
                return Outcome::Yield;
            }
            match user.pop() {
                Some(env) => {
                    processed += 1;
                    *since_report = since_report.wrapping_add(1);
                    if held.is_none() {
                        *held = ctx.hold_actor();
                    }
                    ctx.invoke_user_held(held, env, |ctx| {
                        if tell {
                            self.tell_received(ctx);
                        }
                    });
                    if ctx.is_stopped() {
                        return Outcome::Stopped;
                    }
                }
                None => return Outcome::Idle,
            }
        }
    }

    /// Tells the mailbox middleware of the message about to be received, the context's
    /// current one (out of line: most mailboxes have none).
    #[inline(never)]
    fn tell_received(&self, ctx: &Context) {
        for m in self.mailbox.middleware().iter() {
            m.message_received(ctx.message());
        }
    }

    /// After a hand-off's turn: if the runner task is gone (its runtime shut down), drop
    /// the context it would have dropped.
    fn drop_core_if_detached(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.flags.load(Ordering::SeqCst) & DETACHED != 0 {
            drop(self.core.take());
        }
    }

    fn has_work(&self, suspended: bool) -> bool {
        !self.mailbox.system().is_empty() || (!suspended && !self.mailbox.user().is_empty())
    }

    fn mailbox_empty(&self, suspended: bool) {
        if !suspended && !self.mailbox.middleware().is_empty() && self.mailbox.user().is_empty() {
            for m in self.mailbox.middleware().iter() {
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
        if self.mailbox.system().is_empty() && self.mailbox.user().is_empty() {
            return;
        }
        let dl = self.system.registry().dead_letter_process();
        while let Some(m) = self.mailbox.system().pop(0) {
            dl.send_system_message(pid, m);
        }
        while let Some(mut env) = self.mailbox.user().pop() {
            // A batch's part queued whole: its messages not yet handed out, one by one, as
            // they would have been had the batch been unrolled when posted (the batch
            // itself follows them in the queue).
            if let Some(part) = env.message.batch_mut().filter(|b| b.is_part()) {
                for m in part.envelopes() {
                    dl.send_user_message(pid, m);
                }
                continue;
            }
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
        self.mailbox.user().len()
    }
}

impl Process for ActorProcess {
    fn diagnostics(&self) -> String {
        format!(
            "actor: {} user messages queued{}",
            self.mailbox.user().len(),
            if self.dead.load(Ordering::Acquire) {
                ", stopping"
            } else {
                ""
            }
        )
    }
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

/// How [`ActorProcess::drive`] ended.
enum Driven {
    Idle,
    Yield,
    /// The actor stopped: its context, to drop after the process is marked dead.
    Stopped(Box<Context>),
}

impl HandOff for ActorProcess {
    fn run_handed_off(&self) {
        let Some(ctx) = self.core.take() else {
            // Not expected (whoever won the schedule finds the context back); the task
            // then runs the turn.
            return self.wake_now();
        };
        match self.drive(ctx) {
            Driven::Idle => {}
            // Its own task goes on after the other tasks of this worker.
            Driven::Yield => self.wake_now(),
            Driven::Stopped(ctx) => {
                self.finish(ctx.self_pid());
                drop(ctx);
                // The task finds no context and a dead process, and ends.
                self.wake_now();
            }
        }
        self.drop_core_if_detached();
    }

    fn wake_runner(&self) {
        self.wake_now();
    }
}

/// The mailbox's tokio task (`Mode::Task` and `Mode::HandOff`).
struct RunnerFuture {
    process: Arc<ActorProcess>,
}

impl Future for RunnerFuture {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let p = &*self.get_mut().process;
        // Only this module spawns the runner, as its own task: its waker never changes.
        let w = p.waker.get_or_init(|| cx.waker().clone());
        debug_assert!(w.will_wake(cx.waker()));
        let Some(ctx) = p.core.take() else {
            // A hand-off ran the turn in which the actor stopped (otherwise the schedule's
            // holder has the context and wakes this task when it is done with it).
            return if p.dead.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            };
        };
        let scope = (p.mode == Mode::HandOff).then(|| RunnerScope::enter(p.system.identity()));
        let result = match p.drive(ctx) {
            Driven::Idle => Poll::Pending,
            Driven::Yield => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Driven::Stopped(ctx) => {
                p.finish(ctx.self_pid());
                drop(ctx);
                Poll::Ready(())
            }
        };
        if let Some(mut scope) = scope {
            // The mailboxes this turn's sends won; the scope's drop wakes what is left.
            scope.run_hand_offs();
        }
        result
    }
}

impl Drop for RunnerFuture {
    fn drop(&mut self) {
        // Dropped unfinished (its runtime shut down): drop the context with it, as before
        // the context moved into the process (the context's PID holds the process: kept
        // there, the two would keep each other alive). A hand-off holding it drops it
        // when it sees the flag.
        self.process.flags.fetch_or(DETACHED, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        drop(self.process.core.take());
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

    /// Every actor holds one process in an `Arc` (two counters before it): at most 136 bytes
    /// it is a 160-byte glibc chunk, one more word and it is 176. The flags and the mode pack
    /// beside the schedule state; the queue kinds other than the default and the mailbox
    /// middleware share one box (160 bytes before); the system and the user queue share
    /// one lock (152 bytes before).
    #[test]
    fn an_actor_process_stays_within_its_glibc_chunk() {
        let size = std::mem::size_of::<super::ActorProcess>();
        assert!(size <= 136, "ActorProcess grew to {size} bytes");
    }
}
