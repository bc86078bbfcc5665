//! Dispatchers: where mailboxes run.
//!
//! On the system's dispatcher, an actor that sends to an idle actor of the same system
//! from its mailbox's turn runs that actor's turn next on the same thread, in the same
//! runtime task, when its own turn ends (at most 128 such hand-offs in a row), instead of
//! waking the other actor's task: a chain of actors handing messages to each other stays
//! on one core without thread wake-ups. An actor that blocks its thread inside `receive`
//! until another actor acts must call [`before_blocking`] first (this crate's own blocking
//! waits do).
//!
//! A task that is no mailbox's turn and wakes an idle actor leaves it in its worker's LIFO
//! slot, which other workers cannot steal; if that task's root context goes on sending,
//! the actor is pushed out of the slot after 32 sends so an idle worker runs it meanwhile.

mod hand_off;

pub use hand_off::before_blocking;
pub(crate) use hand_off::{run_handed_off, send_handing_off, try_hand_off, HandOff, RunnerScope};

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::thread::{JoinHandle, ThreadId};

use atomic_waker::AtomicWaker;
use parking_lot::Mutex;

use crate::system::ActorSystem;

/// The default number of messages a mailbox processes before yielding its thread.
pub const DEFAULT_THROUGHPUT: usize = 300;

#[derive(Clone)]
enum Kind {
    System,
    Runtime(tokio::runtime::Handle),
    Synchronized,
    Pinned(PinnedGroup),
}

/// Where an actor's mailbox runs and how many messages it processes per turn.
///
/// - [`Dispatcher::new`]: the actor system's tokio runtime (the default, throughput 300).
/// - [`Dispatcher::on_runtime`]: another tokio runtime (e.g. one reserved for slow actors).
/// - [`Dispatcher::pinned`]: one dedicated thread shared by a [`PinnedGroup`] of actors.
/// - [`Dispatcher::synchronized`]: on the sender's thread, for deterministic tests.
#[derive(Clone)]
pub struct Dispatcher {
    kind: Kind,
    throughput: usize,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = match &self.kind {
            Kind::System => "system",
            Kind::Runtime(_) => "runtime",
            Kind::Synchronized => "synchronized",
            Kind::Pinned(g) => {
                let (name, t) = (g.name(), self.throughput);
                return write!(f, "Dispatcher(pinned {name:?}, throughput {t})");
            }
        };
        write!(f, "Dispatcher({k}, throughput {})", self.throughput)
    }
}

impl Default for Dispatcher {
    fn default() -> Self {
        Self::new(DEFAULT_THROUGHPUT)
    }
}

impl Dispatcher {
    /// Runs on the actor system's runtime, `throughput` messages per turn.
    pub fn new(throughput: usize) -> Self {
        Self {
            kind: Kind::System,
            throughput: throughput.max(1),
        }
    }
    /// Runs on the given tokio runtime.
    pub fn on_runtime(handle: tokio::runtime::Handle, throughput: usize) -> Self {
        Self {
            kind: Kind::Runtime(handle),
            throughput: throughput.max(1),
        }
    }
    /// Runs on the one thread of `group`, with every other actor spawned with it: a message
    /// from one actor of the group to another runs the receiver next on the same thread, with
    /// no thread wake-up (see [`PinnedGroup`]).
    pub fn pinned(group: &PinnedGroup, throughput: usize) -> Self {
        Self {
            kind: Kind::Pinned(group.clone()),
            throughput: throughput.max(1),
        }
    }
    /// Runs each mailbox on the thread that sends to it (no concurrency; for tests).
    pub fn synchronized(throughput: usize) -> Self {
        Self {
            kind: Kind::Synchronized,
            throughput: throughput.max(1),
        }
    }
    /// Messages per turn.
    pub fn throughput(&self) -> usize {
        self.throughput
    }
    pub(crate) fn is_synchronized(&self) -> bool {
        matches!(self.kind, Kind::Synchronized)
    }
    /// True for the system's own runtime, where mailboxes hand off to each other.
    pub(crate) fn is_system(&self) -> bool {
        matches!(self.kind, Kind::System)
    }
    /// Before spawning an actor with this dispatcher on `system`: false if it can run no
    /// actor any more (a pinned group whose thread has ended). A pinned group is tied to the
    /// system here, so that the system's shutdown ends its thread.
    pub(crate) fn prepare(&self, system: &ActorSystem) -> bool {
        match &self.kind {
            Kind::Pinned(g) => g.attach(system),
            _ => true,
        }
    }
    pub(crate) fn handle(&self, system: &ActorSystem) -> tokio::runtime::Handle {
        match &self.kind {
            Kind::Runtime(h) => h.clone(),
            Kind::Pinned(g) => g.0.handle.clone(),
            _ => system.runtime().clone(),
        }
    }
}

/// A group of actors that all run on one dedicated OS thread, for actix-like latency on
/// chains of actors that hand messages to each other (ping-pong, rings, request chains):
/// an actor of the group sending to another wakes it on the same thread, where it runs
/// next, without waking any other thread or moving to another core.
///
/// The thread runs a single-threaded tokio runtime (with I/O and timers), so actors of the
/// group may use async code as they would on the system's runtime. Any thread may send to
/// the group's actors; they are supervised, watched and stopped as any other actor. One
/// actor that blocks blocks the whole group, so pin only actors that return quickly.
///
/// The thread ends when the actor system that spawned on the group shuts down (a group
/// serves one system), or when the last handle on the group is dropped and none of its
/// actors is alive (every spawned actor's props hold a handle). Spawning on a group whose
/// thread has ended fails with [`SpawnError::DispatcherStopped`](crate::SpawnError).
///
/// ```
/// use protoactor::prelude::*;
/// use protoactor::dispatcher::PinnedGroup;
/// use std::time::Duration;
///
/// let system = ActorSystem::new();
/// let group = PinnedGroup::new("pair").unwrap();
/// let on_group = Dispatcher::pinned(&group, 300);
/// let pong = system.root().spawn(
///     &Props::from_func(|ctx| {
///         if ctx.message().is::<&str>() {
///             ctx.respond(std::thread::current().id());
///         }
///     })
///     .with_dispatcher(on_group.clone()),
/// );
/// let thread = system
///     .root()
///     .request_future(&pong, "where?", Duration::from_secs(5))
///     .result_as::<std::thread::ThreadId>()
///     .unwrap();
/// assert_eq!(thread, group.thread_id());
/// system.shutdown(); // also ends the group's thread
/// assert!(group.is_stopped());
/// ```
#[derive(Clone)]
pub struct PinnedGroup(Arc<PinnedInner>);

struct PinnedInner {
    name: String,
    handle: tokio::runtime::Handle,
    thread: ThreadId,
    join: Mutex<Option<JoinHandle<()>>>,
    stop: Arc<StopSignal>,
    /// The id of the first system spawned on the group (the fast path of `attach`).
    system: OnceLock<String>,
    /// The ids of the systems whose shutdown ends the thread.
    systems: Mutex<Vec<String>>,
}

/// Tells the group's thread to leave its runtime.
#[derive(Default)]
struct StopSignal {
    stopped: AtomicBool,
    waker: AtomicWaker,
}

impl StopSignal {
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
}

impl PinnedGroup {
    /// Starts the group's thread (named `protoactor-pinned-<name>`). Fails if the OS
    /// refuses a thread or the runtime cannot be built.
    pub fn new(name: &str) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            // A busy group polls the I/O driver (an `epoll_wait` system call) every 256
            // mailbox turns instead of tokio's 61: a fourth of the system calls on a chain
            // of hand-offs (BENCHMARKS.md). The thread still parks on the driver as soon as
            // it is idle, and the actors' timers run on the system's runtime.
            .event_interval(256)
            .build()?;
        let handle = rt.handle().clone();
        let stop = Arc::new(StopSignal::default());
        let signal = stop.clone();
        let join = std::thread::Builder::new()
            .name(format!("protoactor-pinned-{name}"))
            .spawn(move || {
                // The group's actors run while the thread waits for the stop signal here.
                rt.block_on(poll_fn(|cx| {
                    signal.waker.register(cx.waker());
                    if signal.stopped.load(Ordering::SeqCst) {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                }));
                // Dropping the runtime drops the actors still on it (as a shut-down system's
                // runtime does), here on their own thread.
                drop(rt);
            })?;
        Ok(PinnedGroup(Arc::new(PinnedInner {
            name: name.to_string(),
            handle,
            thread: join.thread().id(),
            join: Mutex::new(Some(join)),
            stop,
            system: OnceLock::new(),
            systems: Mutex::new(Vec::new()),
        })))
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The id of the group's thread, on which all its actors run.
    pub fn thread_id(&self) -> ThreadId {
        self.0.thread
    }

    /// True once the group's thread was told to end (its system shut down, or
    /// [`PinnedGroup::stop`]); no actor can be spawned on it any more.
    pub fn is_stopped(&self) -> bool {
        self.0.stop.stopped.load(Ordering::SeqCst)
    }

    /// Ends the group's thread now, dropping the actors still on it (as a system's shutdown
    /// does), and waits for the thread to end unless called from it.
    pub fn stop(&self) {
        self.0.stop_and_join();
    }

    fn attach(&self, system: &ActorSystem) -> bool {
        if self.is_stopped() {
            return false;
        }
        if self.0.system.get().map(String::as_str) == Some(system.id()) {
            return true;
        }
        let mut systems = self.0.systems.lock();
        if !systems.iter().any(|s| s == system.id()) {
            systems.push(system.id().to_string());
            let _ = self.0.system.set(system.id().to_string());
            // A weak handle: the hook must not keep the group (and its thread) alive.
            let group = Arc::downgrade(&self.0);
            system.on_shutdown(Box::new(move || {
                if let Some(g) = group.upgrade() {
                    g.stop_and_join();
                }
            }));
        }
        true
    }
}

impl PinnedInner {
    fn stop_and_join(&self) {
        self.stop.stop();
        // The group's own thread cannot wait for itself; it ends once it returns to its loop.
        if self.thread != std::thread::current().id() {
            if let Some(j) = self.join.lock().take() {
                let _ = j.join();
            }
        }
    }
}

impl Drop for PinnedInner {
    fn drop(&mut self) {
        // No handle and no actor left: nothing can run on the thread again.
        self.stop_and_join();
    }
}

impl std::fmt::Debug for PinnedGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedGroup")
            .field("name", &self.0.name)
            .field("stopped", &self.is_stopped())
            .finish()
    }
}
