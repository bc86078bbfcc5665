//! Timers that send messages: once or repeatedly, cancellable.

use std::sync::Arc;
use std::time::Duration;

use crate::message::{Message, MessageEnvelope};
use crate::pid::Pid;
use crate::system::ActorSystem;

/// Cancels a scheduled send. Clones share one schedule; **dropping the last clone cancels it**
/// (a repeating send nobody can stop any more would otherwise run for the system's life), so
/// keep the handle for as long as the sends should go on, or call [`CancelHandle::detach`] to
/// let the schedule run on its own. protoactor-go's scheduler returns a cancel function that
/// may be ignored; here ignoring it is explicit.
#[derive(Debug, Clone)]
#[must_use = "dropping the last CancelHandle cancels the schedule; keep it, or call .detach()"]
pub struct CancelHandle(Arc<Schedule>);

/// The running schedule behind the handles: aborts its task when the last handle goes,
/// unless detached.
#[derive(Debug)]
struct Schedule {
    task: tokio::task::AbortHandle,
    detached: std::sync::atomic::AtomicBool,
}

impl Drop for Schedule {
    fn drop(&mut self) {
        if !self.detached.load(std::sync::atomic::Ordering::Acquire) {
            self.task.abort();
        }
    }
}

impl CancelHandle {
    /// Stops future sends.
    pub fn cancel(&self) {
        self.0.task.abort();
    }
    /// True once cancelled or finished.
    pub fn is_finished(&self) -> bool {
        self.0.task.is_finished()
    }
    /// Lets the schedule run without a handle: a repeating send then goes on as long as the
    /// actor system's runtime runs.
    pub fn detach(self) {
        self.0
            .detached
            .store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Sends messages later, through the system's timers.
///
/// ```
/// use protoactor::prelude::*;
/// use protoactor::scheduler::Scheduler;
/// use std::time::Duration;
/// let system = ActorSystem::new();
/// let pid = system.root().spawn(&Props::from_func(|_| {}));
/// let tick = Scheduler::new(&system).send_repeatedly(Duration::ZERO, Duration::from_millis(10), &pid, "tick");
/// tick.cancel();
/// ```
#[derive(Debug, Clone)]
pub struct Scheduler {
    system: ActorSystem,
}

impl Scheduler {
    /// A scheduler for `system`.
    pub fn new(system: &ActorSystem) -> Self {
        Self {
            system: system.clone(),
        }
    }

    fn run<F>(&self, initial: Duration, every: Option<Duration>, mut send: F) -> CancelHandle
    where
        F: FnMut(&ActorSystem) + Send + 'static,
    {
        let system = self.system.clone();
        let task = self.system.runtime().spawn(async move {
            tokio::time::sleep(initial).await;
            send(&system);
            if let Some(every) = every {
                let mut iv = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    iv.tick().await;
                    send(&system);
                }
            }
        });
        CancelHandle(Arc::new(Schedule {
            task: task.abort_handle(),
            detached: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Sends `message` to `target` after `delay`.
    pub fn send_once<M: Message>(&self, delay: Duration, target: &Pid, message: M) -> CancelHandle {
        let (target, mut msg) = (target.clone(), Some(message));
        self.run(delay, None, move |s| {
            if let Some(m) = msg.take() {
                target.send_user_message(s, MessageEnvelope::new(m))
            }
        })
    }

    /// Sends a clone of `message` to `target` after `initial`, then every `interval`.
    pub fn send_repeatedly<M: Message + Clone>(
        &self,
        initial: Duration,
        interval: Duration,
        target: &Pid,
        message: M,
    ) -> CancelHandle {
        let target = target.clone();
        self.run(initial, Some(interval), move |s| {
            target.send_user_message(s, MessageEnvelope::new(message.clone()))
        })
    }

    /// Sends `message` to `target` with `sender` after `delay`.
    pub fn request_once<M: Message>(
        &self,
        delay: Duration,
        target: &Pid,
        sender: &Pid,
        message: M,
    ) -> CancelHandle {
        let (target, sender, mut msg) = (target.clone(), sender.clone(), Some(message));
        self.run(delay, None, move |s| {
            if let Some(m) = msg.take() {
                target
                    .send_user_message(s, MessageEnvelope::new(m).with_sender(Some(sender.clone())))
            }
        })
    }

    /// Sends a clone of `message` to `target` with `sender` after `initial`, then every `interval`.
    pub fn request_repeatedly<M: Message + Clone>(
        &self,
        initial: Duration,
        interval: Duration,
        target: &Pid,
        sender: &Pid,
        message: M,
    ) -> CancelHandle {
        let (target, sender) = (target.clone(), sender.clone());
        self.run(initial, Some(interval), move |s| {
            target.send_user_message(
                s,
                MessageEnvelope::new(message.clone()).with_sender(Some(sender.clone())),
            )
        })
    }
}
