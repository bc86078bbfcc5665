//! Futures: the response to a request, as a process with its own PID (`future$<n>`).
//!
//! An [`ActorFuture`] is a `std::future::Future` (so `.await` works from any async runtime)
//! and can also be waited on from a plain thread with [`ActorFuture::wait`] /
//! [`ActorFuture::result`].

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::message::{
    downcast_message, BoxedMessage, DeadLetterResponse, Message, MessageEnvelope,
};
use crate::pid::Pid;
use crate::process::{CompletionHook, Process, SystemMessage};
use crate::registry::with_joined;
use crate::system::ActorSystem;

/// Why a future has no response.
///
/// A timeout and a dead letter say which request failed: the target PID, the request's
/// message type and the timeout (`request to nonhost/$12 (example::Ping) timed out after 5s`).
/// Match them with `FutureError::Timeout { .. }`, or ask [`FutureError::is_timeout`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FutureError {
    /// No response in time.
    #[error("{request} timed out after {}", timeout_text(request.timeout))]
    Timeout {
        /// The request that got no response.
        request: RequestInfo,
    },
    /// The request went to dead letters (no such actor).
    #[error("{request} went to dead letters: the target does not exist")]
    DeadLetter {
        /// The request that reached no process.
        request: RequestInfo,
    },
    /// The response had another type than asked for.
    #[error("future: expected a response of type {expected}, got {actual}")]
    UnexpectedType {
        /// The asked type.
        expected: &'static str,
        /// The response's type.
        actual: &'static str,
    },
    /// The response was already taken by another call.
    #[error("future: the result was already taken")]
    AlreadyTaken,
}

impl FutureError {
    /// True for [`FutureError::Timeout { .. }`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, FutureError::Timeout { .. })
    }
    /// True for [`FutureError::DeadLetter { .. }`].
    pub fn is_dead_letter(&self) -> bool {
        matches!(self, FutureError::DeadLetter { .. })
    }
    /// The request a timeout or a dead letter is about.
    pub fn request(&self) -> Option<&RequestInfo> {
        match self {
            FutureError::Timeout { request } | FutureError::DeadLetter { request } => Some(request),
            _ => None,
        }
    }
}

fn timeout_text(timeout: Option<Duration>) -> String {
    match timeout {
        Some(t) => format!("{t:?}"),
        None => "its deadline".into(),
    }
}

/// Which request a [`FutureError`] is about. Made only when the error is: a future keeps
/// the target PID (one reference count) and the message type's static name, nothing formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// Where the request went; `None` for a future made with [`ActorFuture::new`], whose
    /// request the future does not know.
    pub target: Option<Pid>,
    /// The Rust type name of the request message (`""` when unknown).
    pub message_type: &'static str,
    /// The future's timeout (`None`: it had none).
    pub timeout: Option<Duration>,
    /// The future's own PID (the request's sender).
    pub future: Pid,
}

impl std::fmt::Display for RequestInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.target {
            Some(t) if self.message_type.is_empty() => write!(f, "request to {t}"),
            Some(t) => write!(f, "request to {t} ({})", self.message_type),
            None => write!(f, "future {}", self.future),
        }
    }
}

enum Outcome {
    Pending,
    Done(Result<BoxedMessage, FutureError>),
    Taken,
}

struct State {
    outcome: Outcome,
    /// The waker of the last `.await` poll (an `ActorFuture` has one owner, so one task
    /// awaits it; a `Vec` here was an allocation per request).
    waker: Option<Waker>,
    pipe_to: Vec<Pid>,
    timer: Option<tokio::task::JoinHandle<()>>,
    /// Keeps the future alive while a response is piped and nobody holds the handle.
    keepalive: Option<Arc<Shared>>,
    /// Run once on completion (see [`Process::on_completion`]).
    hooks: Vec<CompletionHook>,
}

struct Shared {
    pid: Pid,
    system: ActorSystem,
    /// When the future times out (`None`: never). Enforced lazily: a blocking wait waits
    /// until it, `is_done` checks it, and only `.await` and `pipe_to` start a timer task,
    /// so a plain request/wait costs no task spawn (which would wake a runtime worker).
    deadline: Option<Instant>,
    /// The request, for the errors (see [`RequestInfo`]).
    target: Option<Pid>,
    message_type: &'static str,
    timeout: Duration,
    state: Mutex<State>,
    cond: Condvar,
}

struct FutureProcess(Weak<Shared>);

impl Process for FutureProcess {
    fn diagnostics(&self) -> String {
        match self.0.upgrade() {
            Some(s) if matches!(s.state.lock().outcome, Outcome::Pending) => {
                "future: waiting for a response".into()
            }
            _ => "future: completed".into(),
        }
    }
    fn send_user_message(&self, pid: &Pid, envelope: MessageEnvelope) {
        if let Some(s) = self.0.upgrade() {
            // Timeouts are enforced lazily (no timer task for blocking waits): a reply that
            // comes after the deadline is late, exactly as if a timer had fired, so the
            // future times out and the reply goes to dead letters.
            if s.deadline.is_some_and(|d| Instant::now() >= d) {
                s.complete(Err(s.timeout_error()));
                return s
                    .system
                    .registry()
                    .dead_letter_process()
                    .send_user_message(pid, envelope);
            }
            let r = if envelope.message.is::<DeadLetterResponse>() {
                Err(FutureError::DeadLetter {
                    request: s.request_info(),
                })
            } else {
                Ok(envelope.into_message())
            };
            s.complete(r);
        }
    }
    fn send_system_message(&self, _pid: &Pid, message: SystemMessage) {
        if let Some(s) = self.0.upgrade() {
            let name = message.name();
            let m = message.into_user_message().unwrap_or(Box::new(name));
            s.complete(Ok(m));
        }
    }
    fn is_dead(&self) -> bool {
        self.0
            .upgrade()
            .is_none_or(|s| !matches!(s.state.lock().outcome, Outcome::Pending))
    }
    fn on_completion(&self, hook: CompletionHook) -> Result<(), CompletionHook> {
        let Some(s) = self.0.upgrade() else {
            return Err(hook);
        };
        let mut st = s.state.lock();
        if !matches!(st.outcome, Outcome::Pending) {
            return Err(hook);
        }
        st.hooks.push(hook);
        Ok(())
    }
}

impl Shared {
    fn request_info(&self) -> RequestInfo {
        RequestInfo {
            target: self.target.clone(),
            message_type: self.message_type,
            timeout: (self.timeout != ActorFuture::NO_TIMEOUT).then_some(self.timeout),
            future: self.pid.clone(),
        }
    }

    fn timeout_error(&self) -> FutureError {
        FutureError::Timeout {
            request: self.request_info(),
        }
    }

    fn complete(&self, result: Result<BoxedMessage, FutureError>) {
        let error = result.as_ref().err().map(|e| e.to_string());
        let (waker, pipe, timer, hooks, _keepalive) = {
            let mut st = self.state.lock();
            if !matches!(st.outcome, Outcome::Pending) {
                return;
            }
            let keepalive = st.keepalive.take();
            let hooks = std::mem::take(&mut st.hooks);
            let pipe = std::mem::take(&mut st.pipe_to);
            if pipe.is_empty() {
                st.outcome = Outcome::Done(result);
                (st.waker.take(), None, st.timer.take(), hooks, keepalive)
            } else {
                st.outcome = Outcome::Taken;
                (
                    st.waker.take(),
                    Some((pipe, result)),
                    st.timer.take(),
                    hooks,
                    keepalive,
                )
            }
        };
        self.system.registry().remove(&self.pid);
        if let Some(t) = timer {
            t.abort();
        }
        for hook in hooks {
            hook(error.as_deref());
        }
        self.cond.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
        if let Some((pipe, result)) = pipe {
            deliver(&self.system, &pipe, result);
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Dropped unanswered: nobody can read the response any more. (A completed future
        // left the registry in `complete`.)
        if matches!(self.state.get_mut().outcome, Outcome::Pending) {
            self.system.registry().remove(&self.pid);
        }
        if let Some(t) = self.state.get_mut().timer.take() {
            t.abort();
        }
        for hook in std::mem::take(&mut self.state.get_mut().hooks) {
            hook(Some("future: dropped unanswered"));
        }
    }
}

fn deliver(system: &ActorSystem, targets: &[Pid], result: Result<BoxedMessage, FutureError>) {
    let msg: BoxedMessage = match result {
        Ok(m) => m,
        Err(e) => Box::new(e),
    };
    // A message is not cloneable in general: it goes to the first target; the others get
    // the error form only if it was an error.
    let mut msg = Some(msg);
    for (i, t) in targets.iter().enumerate() {
        if i == 0 {
            t.send_user_message(
                system,
                MessageEnvelope::from_boxed(msg.take().expect("first")),
            );
        } else {
            tracing::warn!(target = %t, "pipe_to: a response can be piped to one target only");
        }
    }
}

/// The pending response to a request.
///
/// ```
/// use protoactor::prelude::*;
/// use std::time::Duration;
/// let system = ActorSystem::new();
/// let echo = system.root().spawn(&Props::from_func(|ctx| {
///     if let Some(n) = ctx.message_as::<u32>() { ctx.respond(n + 1); }
/// }));
/// let reply = system.root().request_future(&echo, 41u32, Duration::from_secs(5)).result_as::<u32>();
/// assert_eq!(reply, Ok(42));
/// ```
///
/// Dropping it does not take back the request: the request was sent when the future was made,
/// and a reply that arrives after the drop goes to dead letters.
#[must_use = "the request is sent already; dropping the future sends its reply to dead letters"]
pub struct ActorFuture {
    shared: Arc<Shared>,
    /// The deadline as a tokio timer, made by the first `.await` that finds the future
    /// pending: a timer in the wheel is far cheaper than a timeout task per request.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl ActorFuture {
    /// The timeout of a future that never times out (for `request_future` and [`ActorFuture::new`]).
    pub const NO_TIMEOUT: Duration = Duration::MAX;

    /// A future registered in `system`; [`ActorFuture::NO_TIMEOUT`] never times out.
    ///
    /// Its errors name no request; a future whose PID is sent as the sender of a request is
    /// better made with [`ActorFuture::for_request`].
    pub fn new(system: &ActorSystem, timeout: Duration) -> Self {
        Self::make(system, timeout, None, "")
    }

    /// A future for the reply to a request of type `message_type` sent to `target`: its
    /// timeout and dead-letter errors name both (see [`RequestInfo`]).
    pub fn for_request(
        system: &ActorSystem,
        timeout: Duration,
        target: &Pid,
        message_type: &'static str,
    ) -> Self {
        Self::make(system, timeout, Some(target.clone()), message_type)
    }

    fn make(
        system: &ActorSystem,
        timeout: Duration,
        target: Option<Pid>,
        message_type: &'static str,
    ) -> Self {
        let generated = system.registry().next_id_buf();
        let shared = Arc::new_cyclic(|weak: &Weak<Shared>| {
            let process: Arc<dyn Process> = Arc::new(FutureProcess(weak.clone()));
            let pid = with_joined(&["future", generated.as_str()], |id| {
                system.registry().add(process, id)
            })
            .expect("future ids are unique");
            Shared {
                pid,
                system: system.clone(),
                deadline: if timeout == Self::NO_TIMEOUT {
                    None
                } else {
                    Instant::now().checked_add(timeout)
                },
                target,
                message_type,
                timeout,
                state: Mutex::new(State {
                    outcome: Outcome::Pending,
                    waker: None,
                    pipe_to: Vec::new(),
                    timer: None,
                    keepalive: None,
                    hooks: Vec::new(),
                }),
                cond: Condvar::new(),
            }
        });
        ActorFuture {
            shared,
            sleep: None,
        }
    }

    /// Starts the timeout task if the future can time out and has none yet (for waiters
    /// that are neither a blocked thread nor an `.await`: `pipe_to`). Called with the state locked.
    fn ensure_timer(shared: &Arc<Shared>, st: &mut State) {
        let Some(deadline) = shared.deadline else {
            return;
        };
        if st.timer.is_some() || !matches!(st.outcome, Outcome::Pending) {
            return;
        }
        let weak = Arc::downgrade(shared);
        st.timer = Some(shared.system.runtime().spawn(async move {
            tokio::time::sleep_until(deadline.into()).await;
            if let Some(s) = weak.upgrade() {
                s.complete(Err(s.timeout_error()));
            }
        }));
    }

    /// Completes the future with a timeout if its deadline has passed.
    fn check_deadline(&self) {
        if self.shared.deadline.is_some_and(|d| Instant::now() >= d) {
            self.shared.complete(Err(self.shared.timeout_error()));
        }
    }

    /// The future's PID (use it as a sender).
    pub fn pid(&self) -> &Pid {
        &self.shared.pid
    }

    fn block_until_done(&self) {
        let wait = || {
            let mut st = self.shared.state.lock();
            while matches!(st.outcome, Outcome::Pending) {
                match self.shared.deadline {
                    None => self.shared.cond.wait(&mut st),
                    Some(d) => {
                        if self.shared.cond.wait_until(&mut st, d).timed_out()
                            && matches!(st.outcome, Outcome::Pending)
                        {
                            drop(st);
                            self.shared.complete(Err(self.shared.timeout_error()));
                            return;
                        }
                    }
                }
            }
        };
        if !matches!(self.shared.state.lock().outcome, Outcome::Pending) {
            return;
        }
        // The answer may come from a mailbox this thread was to run after its turn.
        crate::dispatcher::before_blocking();
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    }

    /// Blocks until the future completes; `Ok` if it has a response.
    pub fn wait(&self) -> Result<(), FutureError> {
        self.block_until_done();
        match &self.shared.state.lock().outcome {
            Outcome::Done(Ok(_)) | Outcome::Taken => Ok(()),
            Outcome::Done(Err(e)) => Err(e.clone()),
            Outcome::Pending => unreachable!("waited until done"),
        }
    }

    /// Blocks until the future completes and returns the response.
    pub fn result(self) -> Result<BoxedMessage, FutureError> {
        self.block_until_done();
        self.take()
    }

    /// Blocks and returns the response as a `T`.
    pub fn result_as<T: Message>(self) -> Result<T, FutureError> {
        self.result().and_then(expect_type::<T>)
    }

    /// Awaits the response as a `T`.
    pub async fn into_typed<T: Message>(self) -> Result<T, FutureError> {
        self.await.and_then(expect_type::<T>)
    }

    fn take(&self) -> Result<BoxedMessage, FutureError> {
        let mut st = self.shared.state.lock();
        match std::mem::replace(&mut st.outcome, Outcome::Taken) {
            Outcome::Done(r) => r,
            Outcome::Taken => Err(FutureError::AlreadyTaken),
            Outcome::Pending => {
                st.outcome = Outcome::Pending;
                unreachable!("take is only called when done")
            }
        }
    }

    /// Sends the response (or the [`FutureError`] as a message) to `target` once it arrives.
    pub fn pipe_to(self, target: &Pid) {
        let done = {
            let mut st = self.shared.state.lock();
            match std::mem::replace(&mut st.outcome, Outcome::Taken) {
                Outcome::Pending => {
                    st.outcome = Outcome::Pending;
                    st.pipe_to.push(target.clone());
                    st.keepalive = Some(self.shared.clone());
                    Self::ensure_timer(&self.shared, &mut st);
                    None
                }
                Outcome::Done(r) => Some(r),
                Outcome::Taken => Some(Err(FutureError::AlreadyTaken)),
            }
        };
        if let Some(r) = done {
            deliver(&self.shared.system, std::slice::from_ref(target), r);
        }
    }

    /// True once the future has completed.
    pub fn is_done(&self) -> bool {
        self.check_deadline();
        !matches!(self.shared.state.lock().outcome, Outcome::Pending)
    }
}

fn expect_type<T: Message>(m: BoxedMessage) -> Result<T, FutureError> {
    let actual = m.type_name();
    downcast_message::<T>(m)
        .map(|b| *b)
        .map_err(|_| FutureError::UnexpectedType {
            expected: std::any::type_name::<T>(),
            actual,
        })
}

impl std::future::Future for ActorFuture {
    type Output = Result<BoxedMessage, FutureError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        {
            let mut st = this.shared.state.lock();
            if !matches!(st.outcome, Outcome::Pending) {
                drop(st);
                return Poll::Ready(this.take());
            }
            if !st.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                st.waker = Some(cx.waker().clone());
            }
        }
        if let Some(deadline) = this.shared.deadline {
            let system = &this.shared.system;
            let sleep = this.sleep.get_or_insert_with(|| {
                spare_timer(system, deadline).unwrap_or_else(|| {
                    // Bound to the system's runtime, so any executor can poll it.
                    let _rt = system.runtime().enter();
                    Box::pin(tokio::time::sleep_until(deadline.into()))
                })
            });
            if sleep.as_mut().poll(cx).is_ready() {
                // A response that raced the deadline wins: `complete` keeps the first.
                this.shared.complete(Err(this.shared.timeout_error()));
                return Poll::Ready(this.take());
            }
        }
        Poll::Pending
    }
}

impl Drop for ActorFuture {
    fn drop(&mut self) {
        if let Some(sleep) = self.sleep.take() {
            keep_spare_timer(self.shared.system.registry().serial(), sleep);
        }
    }
}

/// Spare deadline timers per thread, at most this many.
const SPARE_TIMERS: usize = 4;

thread_local! {
    /// Deadline timers of dropped futures, with the serial of the system whose runtime
    /// they belong to, for the next `.await` on this thread. A timer stays registered in
    /// tokio's timer wheel, and moving a registered timer to a later deadline is one atomic
    /// operation; a fresh timer per request took the wheel's lock twice and, whenever the
    /// thread parked on the time driver had no earlier timer, woke it with a syscall
    /// (about one request in three). A spare timer that fires while unused wakes the task
    /// that last used it once, which polls and finds nothing to do.
    static SPARE: RefCell<Vec<(u64, Pin<Box<tokio::time::Sleep>>)>> = const { RefCell::new(Vec::new()) };
}

/// A spare timer of `system`'s runtime, reset to `deadline`.
fn spare_timer(system: &ActorSystem, deadline: Instant) -> Option<Pin<Box<tokio::time::Sleep>>> {
    let serial = system.registry().serial();
    let mut sleep = SPARE
        .try_with(|spare| {
            let mut spare = spare.borrow_mut();
            let i = spare.iter().rposition(|(s, _)| *s == serial)?;
            Some(spare.swap_remove(i).1)
        })
        .ok()??;
    sleep.as_mut().reset(deadline.into());
    Some(sleep)
}

/// Keeps `sleep` (a timer of the system with `serial`) for a later `.await` on this thread.
fn keep_spare_timer(serial: u64, sleep: Pin<Box<tokio::time::Sleep>>) {
    // Dropped here if the thread is exiting or already keeps enough (the oldest goes, so
    // timers of systems no longer used leave).
    let _ = SPARE.try_with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() == SPARE_TIMERS {
            drop(spare.remove(0));
        }
        spare.push((serial, sleep));
    });
}

/// A future that completes with `Terminated` when `pid` is gone (10 s timeout).
fn watched_future(system: &ActorSystem, pid: &Pid) -> ActorFuture {
    let fut = ActorFuture::for_request(system, Duration::from_secs(10), pid, "Watch");
    pid.send_system_message(
        system,
        SystemMessage::Watch {
            watcher: fut.pid().clone(),
        },
    );
    fut
}

/// Stops `pid` at once; the future completes with `Terminated` when it is gone.
pub(crate) fn stop_future(system: &ActorSystem, pid: &Pid) -> ActorFuture {
    let fut = watched_future(system, pid);
    pid.resolve(system).stop(pid);
    fut
}

/// Poisons `pid`; the future completes with `Terminated` when it is gone.
pub(crate) fn poison_future(system: &ActorSystem, pid: &Pid) -> ActorFuture {
    let fut = watched_future(system, pid);
    pid.send_user_message(system, MessageEnvelope::new(crate::message::PoisonPill));
    fut
}

impl std::fmt::Debug for ActorFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ActorFuture({})", self.shared.pid)
    }
}

#[cfg(test)]
mod lazy_timeout_tests {
    use super::*;
    use std::future::Future;

    /// Timeouts hold on every path although no timer task is spawned up front.
    #[test]
    fn every_way_of_waiting_sees_the_timeout() {
        let system = ActorSystem::new();
        let waited = ActorFuture::new(&system, Duration::from_millis(10));
        let id = waited.pid().id().to_string();
        assert!(waited.wait().is_err_and(|e| e.is_timeout()));
        assert!(system.registry().get_local(&id).is_none(), "unregistered");

        let checked = ActorFuture::new(&system, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(checked.is_done());
        assert!(checked.result().err().is_some_and(|e| e.is_timeout()));

        let awaited = ActorFuture::new(&system, Duration::from_millis(10));
        let r = system.runtime().block_on(awaited);
        assert!(r.err().is_some_and(|e| e.is_timeout()));

        let never = ActorFuture::new(&system, ActorFuture::NO_TIMEOUT);
        assert!(!never.is_done());
        system.shutdown();
    }

    fn spare_timers_here() -> usize {
        SPARE.with(|s| s.borrow().len())
    }

    /// An `.await` takes the deadline timer an earlier `.await` on its thread left, moved
    /// to its own deadline, earlier or later: each still times out at its own deadline.
    #[test]
    fn awaits_reusing_a_spare_timer_time_out_at_their_own_deadline() {
        let system = ActorSystem::new();
        let rt = system.runtime().clone();
        // `block_on` polls on this thread, so the spare timers are this thread's.
        let mut long = ActorFuture::new(&system, Duration::from_secs(60));
        let polled =
            rt.block_on(async { tokio::time::timeout(Duration::from_millis(5), &mut long).await });
        assert!(polled.is_err(), "no reply: still pending");
        let before = spare_timers_here();
        drop(long);
        assert_eq!(spare_timers_here(), before + 1, "its timer is kept");

        // Earlier than the spare's deadline (60 s): the timer must move back.
        let t = Instant::now();
        let short = ActorFuture::new(&system, Duration::from_millis(30));
        assert!(rt.block_on(short).err().is_some_and(|e| e.is_timeout()));
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(30),
            "not before its deadline: {took:?}"
        );
        assert!(
            took < Duration::from_secs(30),
            "at its own deadline: {took:?}"
        );
        assert_eq!(spare_timers_here(), before + 1, "taken and given back");

        // Later than the spare's (elapsed) deadline.
        let t = Instant::now();
        let later = ActorFuture::new(&system, Duration::from_millis(60));
        assert!(rt.block_on(later).err().is_some_and(|e| e.is_timeout()));
        assert!(
            t.elapsed() >= Duration::from_millis(60),
            "{:?}",
            t.elapsed()
        );

        // And a reply still wins over the moved timer.
        let answered = ActorFuture::new(&system, Duration::from_secs(5));
        answered
            .pid()
            .send_user_message(&system, MessageEnvelope::new(7u32));
        assert_eq!(
            rt.block_on(answered.into_typed::<u32>()),
            Ok(7),
            "reply before the deadline"
        );
        system.shutdown();
    }

    /// The future keeps one waker, the last poller's: a future polled by one task and
    /// then awaited by another wakes the other.
    #[test]
    fn the_last_poller_is_woken() {
        let system = ActorSystem::new();
        let mut fut = ActorFuture::new(&system, Duration::from_secs(5));
        let mut cx = TaskContext::from_waker(Waker::noop());
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        let (sys, pid) = (system.clone(), fut.pid().clone());
        let r = system.runtime().block_on(async move {
            // This task's waker replaces the first poller's.
            std::future::poll_fn(|cx| {
                assert!(Pin::new(&mut fut).poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            std::thread::spawn(move || pid.send_user_message(&sys, MessageEnvelope::new(7u32)));
            fut.into_typed::<u32>().await
        });
        assert_eq!(r, Ok(7));
        system.shutdown();
    }
}
