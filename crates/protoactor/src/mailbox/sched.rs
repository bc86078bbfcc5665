//! The scheduling state of a mailbox: idle, or scheduled (a runner owns it).
//!
//! Protocol: a sender pushes, then calls [`ScheduleState::request`]; exactly one caller
//! that finds the mailbox idle wins and must run it. The runner, out of messages, calls
//! [`ScheduleState::set_idle`], then re-checks the queues and calls
//! [`ScheduleState::try_reclaim`] if they are not empty. The two SeqCst fences make sure a
//! push racing with `set_idle` is seen by one of the two sides (checked with loom).

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

    /// Hand-offs: whoever wins the schedule (the runner, or a sender that then runs the turn
    /// itself, as a hand-off does) takes the actor's context, and puts it back before giving
    /// the schedule up: a winner always finds it there, no two turns overlap, and no message
    /// is left in an idle mailbox.
    #[test]
    fn the_context_is_always_there_for_the_schedules_winner() {
        use loom::sync::atomic::AtomicBool;

        fn turn(state: &ScheduleState, core: &AtomicBool, q: &AtomicUsize, consumed: &AtomicUsize) {
            loop {
                assert!(core.swap(false, Ordering::AcqRel), "context taken twice");
                drain(q, consumed);
                core.store(true, Ordering::Release);
                state.set_idle();
                if q.load(Ordering::Acquire) > 0 && state.try_reclaim() {
                    continue;
                }
                break;
            }
        }

        loom::model(|| {
            let state = Arc::new(ScheduleState::new_scheduled());
            let core = Arc::new(AtomicBool::new(true));
            let queue = Arc::new(AtomicUsize::new(0));
            let consumed = Arc::new(AtomicUsize::new(0));
            let senders: Vec<_> = (0..2)
                .map(|_| {
                    let (s, c, q, n) =
                        (state.clone(), core.clone(), queue.clone(), consumed.clone());
                    loom::thread::spawn(move || {
                        q.fetch_add(1, Ordering::Release);
                        if s.request() {
                            turn(&s, &c, &q, &n);
                        }
                    })
                })
                .collect();
            turn(&state, &core, &queue, &consumed);
            for s in senders {
                s.join().unwrap();
            }
            assert_eq!(consumed.load(Ordering::SeqCst), 2);
            assert!(core.load(Ordering::SeqCst));
        });
    }
}
