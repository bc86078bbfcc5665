//! Timers that send messages: once or repeatedly, cancellable.

use std::sync::Arc;
use std::time::Duration;

use crate::message::{Message, MessageEnvelope};
use crate::pid::Pid;
use crate::system::ActorSystem;

/// Cancels a scheduled send. Dropping the handle does not cancel (as in protoactor-go,
/// where the cancel function may be ignored).
#[derive(Debug, Clone)]
pub struct CancelHandle(Arc<tokio::task::AbortHandle>);

impl CancelHandle {
    /// Stops future sends.
    pub fn cancel(&self) {
        self.0.abort();
    }
    /// True once cancelled or finished.
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
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
        CancelHandle(Arc::new(task.abort_handle()))
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
