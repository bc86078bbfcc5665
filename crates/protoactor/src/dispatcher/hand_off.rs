//! Hand-offs between the mailboxes of one worker thread.
//!
//! On a multi-threaded tokio runtime, a task woken by a running task goes to the worker's
//! LIFO slot, but only three times in a row; the fourth wake goes to the run queue and
//! unparks the other worker, which steals it. A chain of actors handing one message to
//! each other (ping-pong, rings, request chains) therefore moved between the cores with a
//! thread wake-up every few messages (BENCHMARKS.md, "Single-chain rows").
//!
//! Instead, while a mailbox runner of the system's dispatcher polls on this thread, a send
//! that wins the schedule of another idle mailbox of the same system leaves that mailbox
//! in this thread's slot rather than waking its task, and the runner runs it when its own
//! turn ends, in the same poll (a loop, within the poll's budget, see [`MAX_HAND_OFFS`];
//! then the next one is woken as before). Whatever is left in the slot when the poll ends
//! is woken.
//!
//! The budget sets how often a chain goes through the runtime: each time it is spent, the
//! next mailbox's task is woken into the worker's LIFO slot, and every fourth such wake in
//! a row goes to the run queue instead and unparks the other worker (tokio's
//! `MAX_LIFO_POLLS_PER_TICK`), which mostly finds nothing to steal and parks again: a
//! futex wake on the chain's path. With 32 turns per poll that was one per about 130
//! messages of a one-message chain; with 128, one per about 520 (BENCHMARKS.md, "Issue 29
//! item 3").
//!
//! A runner that blocks its thread waits for nothing in the slot: blocking waits of this
//! crate (a future's `result`, a full bounded mailbox) call [`before_blocking`] first, which
//! wakes the mailbox in the slot and turns the hand-off off until the poll ends.

use std::cell::Cell;
use std::sync::Arc;

/// A mailbox whose schedule a sender won (see the module docs).
pub(crate) trait HandOff: Send + Sync {
    /// Runs the mailbox's turn on this thread; the caller holds its schedule.
    fn run_handed_off(&self);
    /// Wakes the mailbox's own task to run the turn instead.
    fn wake_runner(&self);
}

/// At most this many handed-off turns per poll of a runner: beyond it the worker's other
/// tasks get their turn, and the chain goes on through the runtime as before. 128 is
/// tokio's own budget per poll (a task receiving from a tokio channel yields after 128
/// messages): a one-message chain runs 129 turns (about 13 µs) per poll, and tokio runs at
/// most four such polls in a row (one from its run queue, three from its LIFO slot) before
/// it looks at its run queue, and polls its timer and I/O drivers every 61 of those. A turn
/// takes at most the dispatcher's throughput in messages (300 by default).
pub(crate) const MAX_HAND_OFFS: u32 = 128;

/// This thread's hand-off state, a plain `Copy` value: reading it costs no check of the
/// thread-local's destructor registration, which the slot itself (it holds an `Arc`) needs.
#[derive(Clone, Copy)]
struct State {
    /// The system (`ActorSystem::identity`) whose runner polls on this thread; 0 if none,
    /// or after [`before_blocking`].
    runner_of: usize,
    /// Whether `NEXT` holds a mailbox.
    filled: bool,
}

thread_local! {
    static STATE: Cell<State> = const {
        Cell::new(State {
            runner_of: 0,
            filled: false,
        })
    };
    static NEXT: Cell<Option<Arc<dyn HandOff>>> = const { Cell::new(None) };
}

/// Sets this thread's state. Through `with`, not `LocalKey::set`: `set` goes through the
/// thread-local's lazy-initialisation path, a call of about 17 instructions per hand-off
/// (callgrind), where `with` on this `const`-initialised cell is an address.
#[inline(always)]
fn set_state(st: State) {
    STATE.with(|s| s.set(st));
}

/// Takes the mailbox in the slot (the state says it is filled).
fn take_next() -> Option<Arc<dyn HandOff>> {
    NEXT.try_with(Cell::take).ok().flatten()
}

/// If a runner of `system` polls on this thread and the slot is free, puts the mailbox
/// `make` returns there and returns true (the caller, having won its schedule, must not
/// wake it); otherwise the caller wakes it.
#[inline]
pub(crate) fn try_hand_off(system: usize, make: impl FnOnce() -> Option<Arc<dyn HandOff>>) -> bool {
    let st = STATE.get();
    if st.runner_of != system || st.filled {
        return false;
    }
    let Some(m) = make() else {
        return false;
    };
    if NEXT.try_with(|n| n.set(Some(m))).is_err() {
        return false;
    }
    set_state(State { filled: true, ..st });
    true
}

/// Marks this thread as polling a runner of `system` until [`RunnerScope::next`] finds
/// nothing more to run or the scope is dropped; the drop wakes any mailbox still in the
/// slot.
pub(crate) struct RunnerScope {
    system: usize,
    prev: usize,
    done: bool,
}

impl RunnerScope {
    #[inline]
    pub(crate) fn enter(system: usize) -> Self {
        let st = STATE.get();
        set_state(State {
            runner_of: system,
            ..st
        });
        RunnerScope {
            system,
            prev: st.runner_of,
            done: false,
        }
    }

    /// The next handed-off mailbox to run here, if any (turning the hand-off back on: a
    /// blocking wait in the last turn turned it off); if none, the scope ends here.
    #[inline]
    pub(crate) fn next(&mut self) -> Option<Arc<dyn HandOff>> {
        let filled = STATE.get().filled;
        let next = if filled { take_next() } else { None };
        set_state(State {
            runner_of: if next.is_some() {
                self.system
            } else {
                self.prev
            },
            filled: false,
        });
        self.done = next.is_none();
        next
    }

    /// Runs the mailboxes the turns hand off, one after another (each one's sends may leave
    /// the next), within the poll's budget ([`MAX_HAND_OFFS`]); the scope's drop wakes what
    /// is left.
    #[inline]
    pub(crate) fn run_hand_offs(&mut self) {
        for _ in 0..MAX_HAND_OFFS {
            match self.next() {
                Some(next) => next.run_handed_off(),
                None => return,
            }
        }
    }
}

impl Drop for RunnerScope {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let filled = STATE.get().filled;
        set_state(State {
            runner_of: self.prev,
            filled: false,
        });
        if filled {
            if let Some(m) = take_next() {
                m.wake_runner();
            }
        }
    }
}

/// Call before blocking a thread of the actor system's runtime inside an actor (for
/// example in `tokio::task::block_in_place`) until another actor has done something.
///
/// A mailbox that this thread's runner was going to run when the current turn ends (see
/// the [`dispatcher`](crate::dispatcher) docs) is woken on the runtime instead, and until
/// the turn ends sends wake their targets' tasks, so the actors the blocked one waits for
/// run elsewhere. This crate's own blocking waits (`ActorFuture::result`, a sender waiting
/// for room in a bounded mailbox) call it themselves. Outside a mailbox runner it does
/// nothing.
pub fn before_blocking() {
    let filled = STATE.get().filled;
    set_state(State {
        runner_of: 0,
        filled: false,
    });
    if filled {
        if let Some(m) = take_next() {
            m.wake_runner();
        }
    }
}

/// Runs `send` (a send from outside any mailbox runner, on a thread of the system's
/// runtime) so that the idle mailbox it wins is left in this thread's slot instead of being
/// woken, and returns that mailbox: the caller runs its turn (with [`run_handed_off`]) or
/// wakes it. Inside a runner the runner's own hand-off applies and this is a plain send.
pub(crate) fn send_handing_off(system: usize, send: impl FnOnce()) -> Option<Arc<dyn HandOff>> {
    if STATE.get().runner_of != 0 {
        send();
        return None;
    }
    /// Ends the scope even if `send` panics (a sender middleware's code), waking what it left.
    struct Scope;
    impl Drop for Scope {
        fn drop(&mut self) {
            before_blocking();
        }
    }
    let scope = Scope;
    set_state(State {
        runner_of: system,
        filled: false,
    });
    send();
    let filled = STATE.get().filled;
    set_state(State {
        runner_of: 0,
        filled: false,
    });
    std::mem::forget(scope);
    if filled {
        take_next()
    } else {
        None
    }
}

/// Runs the turn of `first` (a mailbox [`send_handing_off`] returned) on this thread, then
/// the mailboxes its sends hand off, as a runner would (within the budget of
/// [`MAX_HAND_OFFS`]; what is left is woken).
pub(crate) fn run_handed_off(system: usize, first: Arc<dyn HandOff>) {
    let mut scope = RunnerScope::enter(system);
    first.run_handed_off();
    scope.run_hand_offs();
}
