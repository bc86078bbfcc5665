//! The receive timeout: a [`ReceiveTimeout`] after a while without messages.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Context;
use crate::message::{MessageEnvelope, ReceiveTimeout};
use crate::pid::Pid;
use crate::system::ActorSystem;

impl Context {
    /// The receive timeout, if set.
    pub fn receive_timeout(&self) -> Option<Duration> {
        self.extras_ref()
            .and_then(|e| e.receive_timeout.as_ref())
            .filter(|(_, t)| !t.fired.load(Ordering::Acquire))
            .map(|(d, _)| *d)
    }

    /// Sends this actor a [`ReceiveTimeout`] after `timeout` without messages (once; set it
    /// again to re-arm). Below 1 ms disables it.
    pub fn set_receive_timeout(&mut self, timeout: Duration) {
        if timeout < Duration::from_millis(1) {
            return self.cancel_receive_timeout();
        }
        if self.receive_timeout() == Some(timeout) {
            return;
        }
        self.cancel_receive_timeout();
        let timer = TimeoutTimer::start(&self.system, &self.self_pid, timeout);
        self.extras().receive_timeout = Some((timeout, timer));
    }
    /// Cancels the receive timeout.
    pub fn cancel_receive_timeout(&mut self) {
        if let Some(e) = self.extras_mut() {
            if let Some((_, t)) = e.receive_timeout.take() {
                t.cancel();
            }
        }
    }

    /// Before a message: as protoactor-go, an influencing message pauses the timer, and
    /// `ReceiveTimeout` comes `d` after the end of the last influencing message. A message
    /// that sets the first timeout counts as influencing too.
    ///
    /// Takes the envelope, not the message: the message is read only when there is a timer
    /// (reading it tests the kind of the envelope's message). The common case (no timer) is
    /// checked here, the rest out of line, as in `resume_receive_timeout`: inlined whole, it
    /// became a call of its own per message once reading a message had a test (callgrind).
    #[inline(always)]
    pub(super) fn pause_receive_timeout(&mut self, envelope: &MessageEnvelope) -> TimerPause {
        if self.extras_ref().is_none() {
            return TimerPause::NO_TIMER;
        }
        self.pause_receive_timer(envelope)
    }

    /// `pause_receive_timeout` with the context's rarely used state allocated.
    #[inline(never)]
    fn pause_receive_timer(&mut self, envelope: &MessageEnvelope) -> TimerPause {
        let (had_timer, paused) = match self.extras_ref().and_then(|e| e.receive_timeout.as_ref()) {
            None => (false, None),
            Some((_, t)) if t.fired.load(Ordering::Acquire) => {
                self.extras().receive_timeout = None;
                (false, None)
            }
            Some((d, t)) => {
                if self
                    .system
                    .message_traits()
                    .influences_receive_timeout(envelope.message())
                {
                    t.pause();
                    (true, Some(RearmOnUnwind(Some((*d, t.clone())))))
                } else {
                    (true, None)
                }
            }
        };
        TimerPause { had_timer, paused }
    }

    /// After the message: re-arms the timer now in place (the handler may have set a new one).
    // Forced, with the common case (no timer before the message, none after it: nothing to
    // do) checked here and the rest out of line: LLVM kept the whole of it a call of its
    // own per message (17 instructions, callgrind).
    #[inline(always)]
    pub(super) fn resume_receive_timeout(&mut self, pause: TimerPause) {
        if pause.paused.is_none() && self.extras_ref().is_none() {
            return;
        }
        self.rearm_receive_timeout(pause)
    }

    #[inline(never)]
    fn rearm_receive_timeout(&mut self, pause: TimerPause) {
        let influenced = match pause.paused {
            Some(mut guard) => {
                guard.0 = None;
                true
            }
            None => !pause.had_timer,
        };
        if influenced {
            if let Some((d, t)) = self.extras_ref().and_then(|e| e.receive_timeout.as_ref()) {
                t.reset(*d);
            }
        }
    }
}

/// What [`Context::pause_receive_timeout`] did, for [`Context::resume_receive_timeout`].
pub(super) struct TimerPause {
    had_timer: bool,
    paused: Option<RearmOnUnwind>,
}

impl TimerPause {
    /// There was no timer before the message.
    pub(super) const NO_TIMER: TimerPause = TimerPause {
        had_timer: false,
        paused: None,
    };
}

/// Re-arms a paused receive timeout if the handler unwinds (a resumed actor still gets its
/// `ReceiveTimeout`); disarmed on the normal path, which re-arms the current timer itself.
struct RearmOnUnwind(Option<(Duration, Arc<TimeoutTimer>)>);

impl Drop for RearmOnUnwind {
    fn drop(&mut self) {
        if let Some((d, t)) = self.0.take() {
            t.reset(d);
        }
    }
}

/// The receive-timeout timer: one task per arming, whose deadline moves with each message.
pub(crate) struct TimeoutTimer {
    base: Instant,
    /// Nanoseconds after `base`; `PAUSED` while a message is being processed.
    deadline: AtomicU64,
    /// The task found the timer paused and waits for `notify` (not for a deadline).
    parked: AtomicBool,
    fired: AtomicBool,
    cancelled: AtomicBool,
    notify: tokio::sync::Notify,
}

const PAUSED: u64 = u64::MAX;

impl TimeoutTimer {
    fn start(system: &ActorSystem, pid: &Pid, d: Duration) -> Arc<Self> {
        let t = Arc::new(TimeoutTimer {
            base: Instant::now(),
            deadline: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            fired: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            notify: tokio::sync::Notify::new(),
        });
        t.reset(d);
        let (t2, system2, pid) = (t.clone(), system.clone(), pid.clone());
        system.runtime().spawn(async move {
            loop {
                if t2.cancelled.load(Ordering::Acquire) {
                    return;
                }
                match t2.deadline() {
                    // A message is being handled: the deadline is unknown until it is done,
                    // so wait for `reset` (or `cancel`) to wake this task.
                    None => {
                        t2.parked.store(true, Ordering::SeqCst);
                        if t2.deadline().is_none() && !t2.cancelled.load(Ordering::SeqCst) {
                            t2.notify.notified().await;
                        }
                        t2.parked.store(false, Ordering::SeqCst);
                    }
                    Some(dl) if Instant::now() < dl => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(dl.into()) => {}
                            _ = t2.notify.notified() => {}
                        }
                    }
                    Some(_) => {
                        t2.fired.store(true, Ordering::Release);
                        pid.send_user_message(&system2, MessageEnvelope::new(ReceiveTimeout));
                        return;
                    }
                }
            }
        });
        t
    }
    /// The current deadline (`None` while paused).
    fn deadline(&self) -> Option<Instant> {
        match self.deadline.load(Ordering::SeqCst) {
            PAUSED => None,
            n => Some(self.base + Duration::from_nanos(n)),
        }
    }
    fn pause(&self) {
        self.deadline.store(PAUSED, Ordering::SeqCst);
    }
    /// Moves the deadline to `d` from now, waking the task if it waits for a paused timer
    /// (a later deadline needs no wake-up: the task re-reads it when its sleep ends).
    fn reset(&self, d: Duration) {
        let n = (self.base.elapsed() + d).as_nanos().min(PAUSED as u128 - 1) as u64;
        self.deadline.store(n, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            self.notify.notify_one();
        }
    }
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}
