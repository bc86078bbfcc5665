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
//! turn ends, in the same poll (a loop, at most [`MAX_HAND_OFFS`] per poll, then the next
//! one is woken as before). Whatever is left in the slot when the poll ends is woken.
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
/// tasks (and its I/O and timer drivers) get their turn, and the chain goes on through the
/// runtime as before.
pub(crate) const MAX_HAND_OFFS: u32 = 32;

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
    /// Root sends on this thread since a task that is no runner woke a mailbox's task (see
    /// [`woke_outside_runner`]); 0 if no such wake is pending. A cell of its own: the root
    /// context's send reads one byte, not the whole state.
    static LIFO_SENDS: Cell<u8> = const { Cell::new(0) };
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
/// the mailboxes its sends hand off, as a runner would (at most [`MAX_HAND_OFFS`]; what is
/// left is woken).
pub(crate) fn run_handed_off(system: usize, first: Arc<dyn HandOff>) {
    let mut scope = RunnerScope::enter(system);
    first.run_handed_off();
    for _ in 1..MAX_HAND_OFFS {
        match scope.next() {
            Some(next) => next.run_handed_off(),
            None => return,
        }
    }
}

/// Root sends after a wake from a task that is no runner before the woken mailbox is
/// pushed out of the worker's LIFO slot (see [`woke_outside_runner`]): a task that sends a
/// few messages and then awaits costs nothing more, one that goes on sending gets its
/// receiver running beside it.
const LIFO_PATIENCE: u8 = 32;

/// A send outside any mailbox runner woke a mailbox's task (no hand-off applied).
///
/// On a worker of a multi-threaded tokio runtime, a task woken by the running task goes to
/// the worker's LIFO slot, which the other workers cannot steal: it runs when the waking
/// task yields. A task that sends in a loop without yielding (a producer, the benchmarks'
/// driver) therefore had its receiver wait for the whole loop, the two running one after
/// the other on one core while the other worker idled. Here the wake is noted; if this
/// thread's root context goes on sending ([`before_root_send`]), the woken task is pushed
/// out of the slot into the worker's run queue, from which an idle worker steals it.
#[cold]
#[inline(never)]
pub(crate) fn woke_outside_runner() {
    if STATE.get().runner_of == 0 && tokio::task::try_id().is_some() {
        LIFO_SENDS.with(|n| n.set(1));
    }
}

/// Before a root context's send on this thread: counts it if a wake is pending
/// ([`woke_outside_runner`]), and after [`LIFO_PATIENCE`] of them pushes the woken task
/// out of the LIFO slot by spawning an empty task on `runtime` (the system's), which takes
/// the slot (tokio moves the slot's task to the run queue and unparks an idle worker).
/// Before the send, not after: the send stays the caller's tail call.
#[inline(always)]
pub(crate) fn before_root_send(runtime: &tokio::runtime::Handle) {
    if LIFO_SENDS.with(Cell::get) != 0 {
        count_root_send(runtime);
    }
}

#[cold]
#[inline(never)]
fn count_root_send(runtime: &tokio::runtime::Handle) {
    let n = LIFO_SENDS.with(Cell::get);
    if n < LIFO_PATIENCE {
        return LIFO_SENDS.with(|c| c.set(n + 1));
    }
    LIFO_SENDS.with(|c| c.set(0));
    // Only a task on a worker of this runtime fills that worker's slot; elsewhere this
    // spawn lands in the shared queue and costs one empty task.
    drop(runtime.spawn(async {}));
}
