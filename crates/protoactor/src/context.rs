//! The actor context: everything an actor can do while handling a message, and the
//! lifecycle machinery behind it (start, stop, restart, watch, failure).

use std::cell::OnceCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexSet;

use crate::actor::{Actor, FuncActor};
use crate::future::ActorFuture;
use crate::message::{
    downcast_message, into_boxed, Message, MessageEnvelope, MessageHeader, PoisonPill,
    ReceiveTimeout, Restarting, Started, Stopped, Stopping, Terminated, TerminatedReason, Touch,
    Touched,
};
use crate::pid::Pid;
use crate::process::{Continuation, SystemMessage};
use crate::props::{ContextDecorator, Props, SenderContext, SpawnError};
use crate::registry::with_joined;
use crate::supervision::{Failure, FailureReason, RestartStatistics, Supervisor};
use crate::system::ActorSystem;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Alive,
    Restarting,
    Stopping,
    Stopped,
}

enum Current {
    None,
    Owned(MessageEnvelope),
    /// Retained for `reenter_after` continuations.
    Slot(u64),
}

/// State most actors never need, allocated on first use (keeps idle actors small).
#[derive(Default)]
struct Extras {
    children: IndexSet<Pid, foldhash::fast::RandomState>,
    watchers: IndexSet<Pid, foldhash::fast::RandomState>,
    stash: Vec<MessageEnvelope>,
    slots: HashMap<u64, (MessageEnvelope, usize)>,
    next_slot: u64,
    receive_timeout: Option<(Duration, Arc<TimeoutTimer>)>,
}

/// The context of an actor: its identity, the current message, and the operations of
/// Proto.Actor (send, request, respond, spawn, watch, stop, …).
pub struct Context {
    system: ActorSystem,
    props: Props,
    self_pid: Pid,
    parent: Option<Pid>,
    actor: Option<Box<dyn Actor>>,
    current: Current,
    state: State,
    extras: Option<Box<Extras>>,
    restart_stats: OnceCell<RestartStatistics>,
    pending_failure: Option<FailureReason>,
}

static NO_MESSAGE: () = ();

impl Context {
    pub(crate) fn new(system: &ActorSystem, props: Props, pid: Pid, parent: Option<Pid>) -> Self {
        let actor = (props.0.producer)(system);
        Context {
            system: system.clone(),
            props,
            self_pid: pid,
            parent,
            actor: Some(actor),
            current: Current::None,
            state: State::Alive,
            extras: None,
            restart_stats: OnceCell::new(),
            pending_failure: None,
        }
    }

    fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Default::default)
    }

    // ---------------------------------------------------------------- info

    /// The actor system.
    pub fn system(&self) -> &ActorSystem {
        &self.system
    }
    /// This actor's PID.
    pub fn self_pid(&self) -> &Pid {
        &self.self_pid
    }
    /// The parent's PID (`None` for top-level actors).
    pub fn parent(&self) -> Option<&Pid> {
        self.parent.as_ref()
    }
    /// The props this actor was spawned with.
    pub fn props(&self) -> &Props {
        &self.props
    }
    /// The children, in spawn order.
    pub fn children(&self) -> Vec<Pid> {
        self.extras
            .as_ref()
            .map(|e| e.children.iter().cloned().collect())
            .unwrap_or_default()
    }
    /// The actor instance (for example to downcast in middleware).
    pub fn actor(&self) -> Option<&dyn Actor> {
        self.actor.as_deref()
    }

    fn envelope(&self) -> Option<&MessageEnvelope> {
        match &self.current {
            Current::Owned(env) => Some(env),
            Current::Slot(id) => self
                .extras
                .as_ref()
                .and_then(|e| e.slots.get(id))
                .map(|(env, _)| env),
            Current::None => None,
        }
    }

    /// The current message (`()` outside message handling).
    pub fn message(&self) -> &dyn Message {
        match self.envelope() {
            Some(env) => &*env.message,
            None => &NO_MESSAGE,
        }
    }
    /// The current message as a `T`, if it is one.
    pub fn message_as<T: Message>(&self) -> Option<&T> {
        self.message().downcast_ref::<T>()
    }
    /// Moves the current message out if it is a `T` (afterwards `message()` is `()`).
    /// Messages retained by `reenter_after` cannot be taken.
    pub fn take_message<T: Message>(&mut self) -> Option<T> {
        let Current::Owned(env) = &mut self.current else {
            return None;
        };
        if !env.message.is::<T>() {
            return None;
        }
        let msg = std::mem::replace(&mut env.message, Box::new(()));
        downcast_message::<T>(msg).ok().map(|b| *b)
    }
    /// The current message's header.
    pub fn header(&self) -> Option<&MessageHeader> {
        self.envelope().and_then(|e| e.header.as_deref())
    }
    /// Who sent the current message, if it was a request.
    pub fn sender(&self) -> Option<&Pid> {
        self.envelope().and_then(|e| e.sender.as_ref())
    }
    /// The receive timeout, if set.
    pub fn receive_timeout(&self) -> Option<Duration> {
        self.extras
            .as_ref()
            .and_then(|e| e.receive_timeout.as_ref())
            .filter(|(_, t)| !t.fired.load(Ordering::Acquire))
            .map(|(d, _)| *d)
    }

    // ---------------------------------------------------------------- sending

    /// Sends through this actor's sender middleware.
    pub fn send_envelope(&self, target: &Pid, envelope: MessageEnvelope) {
        match &self.props.0.sender_chain {
            None => target.send_user_message(&self.system, envelope),
            Some(chain) => chain(
                &SenderContext {
                    system: &self.system,
                    self_pid: Some(&self.self_pid),
                },
                target,
                envelope,
            ),
        }
    }
    /// Sends `message` to `target` (no sender).
    #[inline]
    pub fn send<M: Message>(&self, target: &Pid, message: M) {
        self.send_envelope(target, MessageEnvelope::new(message))
    }
    /// Sends `message` with this actor as the sender, so the target can respond.
    pub fn request<M: Message>(&self, target: &Pid, message: M) {
        self.send_envelope(
            target,
            MessageEnvelope::new(message).with_sender(Some(self.self_pid.clone())),
        )
    }
    /// Sends `message` with `sender` as the sender.
    pub fn request_with_custom_sender<M: Message>(&self, target: &Pid, message: M, sender: &Pid) {
        self.send_envelope(
            target,
            MessageEnvelope::new(message).with_sender(Some(sender.clone())),
        )
    }
    /// Sends `message` and returns a future of the response (`Duration::MAX`: no timeout).
    pub fn request_future<M: Message>(
        &self,
        target: &Pid,
        message: M,
        timeout: Duration,
    ) -> ActorFuture {
        let fut = ActorFuture::new(&self.system, timeout);
        self.send_envelope(
            target,
            MessageEnvelope::new(message).with_sender(Some(fut.pid().clone())),
        );
        fut
    }
    /// Sends `message` to the sender of the current message (to dead letters if none).
    pub fn respond<M: Message>(&self, message: M) {
        match self.sender() {
            Some(s) => {
                let s = s.clone();
                self.send(&s, message)
            }
            None => {
                let dl = self.system.dead_letter();
                dl.send_user_message(&self.system, MessageEnvelope::new(message));
            }
        }
    }
    /// Forwards the current message (with its sender and header) to `target`, through this
    /// actor's sender middleware (as protoactor-go does).
    ///
    /// **Deviation from protoactor-go:** the message moves, so afterwards `message()` is `()`
    /// (sender and header stay readable). Go keeps the message because it shares a pointer;
    /// a Rust message is an owned `Box<dyn Any>` that cannot be cloned in general, and
    /// sending a copy later would reorder it behind this actor's later sends.
    pub fn forward(&mut self, target: &Pid) {
        match std::mem::replace(&mut self.current, Current::None) {
            Current::Owned(env) => {
                let placeholder = MessageEnvelope {
                    message: Box::new(()),
                    sender: env.sender.clone(),
                    header: env.header.clone(),
                };
                self.current = Current::Owned(placeholder);
                self.send_envelope(target, env);
            }
            other => {
                self.current = other;
                tracing::error!(pid = %self.self_pid, "forward: no owned message to forward");
            }
        }
    }

    // ---------------------------------------------------------------- spawning

    /// Spawns a child with a generated name.
    ///
    /// On failure (system shut down) the error is logged and the returned PID leads to dead letters.
    pub fn spawn(&mut self, props: &Props) -> Pid {
        let name = self.system.registry().next_id_buf();
        self.spawn_or_dead(props, name.as_str())
    }
    /// Spawns a child named `prefix` + a generated id.
    pub fn spawn_prefix(&mut self, props: &Props, prefix: &str) -> Pid {
        let generated = self.system.registry().next_id_buf();
        with_joined(&[prefix, generated.as_str()], |name| {
            self.spawn_or_dead(props, name)
        })
    }
    fn spawn_or_dead(&mut self, props: &Props, name: &str) -> Pid {
        match self.spawn_named(props, name) {
            Ok(pid) => pid,
            Err(e) => {
                tracing::error!(parent = %self.self_pid, error = %e, "spawn failed");
                Pid::with_parts(
                    self.system.registry().address(),
                    Arc::from(format!("{}/{}", self.self_pid.id(), name)),
                    0,
                )
            }
        }
    }
    /// Spawns a child named `name` (its id is `<self id>/<name>`).
    pub fn spawn_named(&mut self, props: &Props, name: &str) -> Result<Pid, SpawnError> {
        if props.0.guardian.is_some() {
            return Err(SpawnError::GuardianOnChild);
        }
        let pid = with_joined(&[self.self_pid.id(), "/", name], |id| {
            match &self.props.0.spawn_chain {
                Some(chain) => chain(&self.system, id, props, Some(&self.self_pid)),
                None => props.spawn(&self.system, id, Some(&self.self_pid)),
            }
        })?;
        self.extras().children.insert(pid.clone());
        Ok(pid)
    }

    // ---------------------------------------------------------------- stopping, watching

    /// Stops `pid` at once (queued user messages are not processed).
    pub fn stop(&self, pid: &Pid) {
        pid.resolve(&self.system).stop(pid);
    }
    /// Stops `pid`; the future completes with `Terminated` when it is gone (10 s timeout).
    pub fn stop_future(&self, pid: &Pid) -> ActorFuture {
        crate::root_context::stop_future(&self.system, pid)
    }
    /// Stops `pid` after the messages already in its mailbox.
    pub fn poison(&self, pid: &Pid) {
        pid.send_user_message(&self.system, MessageEnvelope::new(PoisonPill));
    }
    /// Poisons `pid`; the future completes with `Terminated` when it is gone (10 s timeout).
    pub fn poison_future(&self, pid: &Pid) -> ActorFuture {
        crate::root_context::poison_future(&self.system, pid)
    }
    /// Watches `pid`: this actor gets `Terminated` when it is gone.
    pub fn watch(&self, pid: &Pid) {
        pid.send_system_message(
            &self.system,
            SystemMessage::Watch {
                watcher: self.self_pid.clone(),
            },
        );
    }
    /// Stops watching `pid`.
    pub fn unwatch(&self, pid: &Pid) {
        pid.send_system_message(
            &self.system,
            SystemMessage::Unwatch {
                watcher: self.self_pid.clone(),
            },
        );
    }

    // ---------------------------------------------------------------- receive timeout

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
        if let Some(e) = self.extras.as_mut() {
            if let Some((_, t)) = e.receive_timeout.take() {
                t.cancel();
            }
        }
    }

    // ---------------------------------------------------------------- futures

    /// Awaits `future` without blocking the actor, then runs `continuation` inside the actor
    /// (in order with its other messages) with the current message restored.
    ///
    /// `A` is the actor's type; a continuation for another type is not run (logged).
    pub fn reenter_after<A, F, C>(&mut self, future: F, continuation: C)
    where
        A: Actor,
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
        C: FnOnce(&mut A, &mut Context, F::Output) + Send + 'static,
    {
        self.reenter(future, move |actor: &mut dyn Actor, ctx, out| {
            let any: &mut dyn std::any::Any = actor;
            match any.downcast_mut::<A>() {
                Some(a) => continuation(a, ctx, out),
                None => tracing::error!(
                    pid = %ctx.self_pid,
                    expected = std::any::type_name::<A>(),
                    "reenter_after: the actor is not of the continuation's type"
                ),
            }
        })
    }

    /// Like [`Context::reenter_after`], for closure actors (the continuation gets only the context).
    pub fn reenter_after_with_context<F, C>(&mut self, future: F, continuation: C)
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
        C: FnOnce(&mut Context, F::Output) + Send + 'static,
    {
        self.reenter(future, move |_actor: &mut dyn Actor, ctx, out| {
            continuation(ctx, out)
        })
    }

    fn reenter<F, C>(&mut self, future: F, continuation: C)
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
        C: FnOnce(&mut dyn Actor, &mut Context, F::Output) + Send + 'static,
    {
        let slot = self.retain_current();
        let (system, pid) = (self.system.clone(), self.self_pid.clone());
        self.system.runtime().spawn(async move {
            let out = future.await;
            let f: crate::process::ContinuationFn = Box::new(move |a, c| continuation(a, c, out));
            pid.send_system_message(
                &system,
                SystemMessage::Continuation(Continuation { slot, f }),
            );
        });
    }

    fn retain_current(&mut self) -> u64 {
        let current = std::mem::replace(&mut self.current, Current::None);
        let e = self.extras();
        let id = match current {
            Current::Slot(id) => {
                if let Some(s) = e.slots.get_mut(&id) {
                    s.1 += 1;
                }
                id
            }
            other => {
                let env = match other {
                    Current::Owned(env) => env,
                    _ => MessageEnvelope::new(()),
                };
                e.next_slot += 1;
                let id = e.next_slot;
                e.slots.insert(id, (env, 1));
                id
            }
        };
        self.current = Current::Slot(id);
        id
    }

    fn release_slot(&mut self, id: u64) {
        if let Some(e) = self.extras.as_mut() {
            if let Some(s) = e.slots.get_mut(&id) {
                s.1 -= 1;
                if s.1 == 0 {
                    e.slots.remove(&id);
                }
            }
        }
    }

    // ---------------------------------------------------------------- misc

    /// Stashes the current message; stashed messages are delivered again, in the order they
    /// were stashed, after the actor restarts. The message moves: afterwards `message()` is `()`.
    pub fn stash(&mut self) {
        match std::mem::replace(&mut self.current, Current::None) {
            Current::Owned(env) => self.extras().stash.push(env),
            other => {
                self.current = other;
                tracing::warn!(pid = %self.self_pid, "stash: the current message cannot be stashed");
            }
        }
    }

    /// How many messages are stashed.
    pub fn stash_len(&self) -> usize {
        self.extras.as_ref().map_or(0, |e| e.stash.len())
    }

    /// Fails this actor without panicking: once the current `receive` returns, the failure
    /// goes to the supervisor exactly as a panic would.
    pub fn fail(&mut self, reason: FailureReason) {
        self.pending_failure = Some(reason);
    }

    // ================================================================ machinery

    pub(crate) fn is_stopped(&self) -> bool {
        self.state == State::Stopped
    }

    /// Runs the actor (through the context decorators) on the current message.
    fn invoke_actor(&mut self) {
        let Some(mut actor) = self.actor.take() else {
            return;
        };
        let result = if self.props.0.context_decorators.is_empty() {
            catch_unwind(AssertUnwindSafe(|| actor.receive(self)))
        } else {
            let props = self.props.clone();
            catch_unwind(AssertUnwindSafe(|| {
                run_decorators(&props.0.context_decorators, self, &mut |c| actor.receive(c))
            }))
        };
        self.actor = Some(actor);
        if let Err(payload) = result {
            resume_unwind(payload);
        }
        if let Some(reason) = self.pending_failure.take() {
            self.escalate_reason(reason);
        }
    }

    /// The innermost step of the receiver chain (protoactor-go's `Receive(envelope)`).
    pub(crate) fn receive_envelope(&mut self, env: MessageEnvelope) {
        self.current = Current::Owned(env);
        self.default_receive();
        self.current = Current::None;
    }

    fn default_receive(&mut self) {
        if self.message().is::<PoisonPill>() {
            let me = self.self_pid.clone();
            self.stop(&me);
        } else if self.message().is::<Touch>() {
            self.invoke_actor();
            self.respond(Touched {
                who: self.self_pid.clone(),
            });
        } else {
            self.invoke_actor();
        }
    }

    fn process_message(&mut self, env: MessageEnvelope) {
        match &self.props.0.receiver_chain {
            Some(chain) => {
                let chain = chain.clone();
                chain(self, env)
            }
            None => self.receive_envelope(env),
        }
    }

    pub(crate) fn invoke_user(&mut self, env: MessageEnvelope) {
        if self.state == State::Stopped {
            let dl = self.system.dead_letter();
            return dl.send_user_message(&self.system, env);
        }
        let timer = match self
            .extras
            .as_mut()
            .and_then(|e| e.receive_timeout.as_ref())
        {
            None => None,
            Some((_, t)) if t.fired.load(Ordering::Acquire) => {
                self.extras().receive_timeout = None;
                None
            }
            Some((d, t)) => {
                if self
                    .system
                    .message_traits()
                    .influences_receive_timeout(&*env.message)
                {
                    t.pause();
                    Some((*d, t.clone()))
                } else {
                    None
                }
            }
        };
        self.process_message(env);
        if let Some((d, t)) = timer {
            t.reset(d);
        }
    }

    fn invoke_lifecycle<M: Message>(&mut self, msg: M) {
        self.invoke_user(MessageEnvelope::new(msg));
    }

    pub(crate) fn invoke_system(&mut self, msg: SystemMessage) {
        match msg {
            SystemMessage::Started => self.invoke_lifecycle(Started),
            SystemMessage::Watch { watcher } => {
                if self.state >= State::Stopping {
                    watcher.send_system_message(
                        &self.system,
                        SystemMessage::Terminated(Terminated {
                            who: self.self_pid.clone(),
                            why: TerminatedReason::Stopped,
                        }),
                    );
                } else {
                    self.extras().watchers.insert(watcher);
                }
            }
            SystemMessage::Unwatch { watcher } => {
                if let Some(e) = self.extras.as_mut() {
                    e.watchers.shift_remove(&watcher);
                }
            }
            SystemMessage::Stop => self.handle_stop(),
            SystemMessage::Terminated(t) => {
                if let Some(e) = self.extras.as_mut() {
                    e.children.shift_remove(&t.who);
                }
                self.invoke_lifecycle(t);
                self.try_restart_or_terminate();
            }
            SystemMessage::Failure(f) => self.handle_failure(f),
            SystemMessage::Restart => self.handle_restart(),
            SystemMessage::Continuation(c) => {
                self.current = Current::Slot(c.slot);
                let slot = c.slot;
                if let Some(mut actor) = self.actor.take() {
                    let r = catch_unwind(AssertUnwindSafe(|| (c.f)(&mut *actor, self)));
                    self.actor = Some(actor);
                    self.current = Current::None;
                    self.release_slot(slot);
                    if let Err(p) = r {
                        resume_unwind(p);
                    }
                    if let Some(reason) = self.pending_failure.take() {
                        self.escalate_reason(reason);
                    }
                } else {
                    self.current = Current::None;
                    self.release_slot(slot);
                }
            }
            SystemMessage::SuspendMailbox | SystemMessage::ResumeMailbox => {}
        }
    }

    fn handle_stop(&mut self) {
        if self.state >= State::Stopping {
            return;
        }
        self.state = State::Stopping;
        self.invoke_lifecycle(Stopping);
        self.stop_all_children();
        self.try_restart_or_terminate();
    }

    fn handle_restart(&mut self) {
        self.state = State::Restarting;
        self.invoke_lifecycle(Restarting);
        self.stop_all_children();
        self.try_restart_or_terminate();
        self.system.metrics().restart();
    }

    fn stop_all_children(&mut self) {
        if let Some(e) = self.extras.as_ref() {
            for pid in e.children.iter().rev() {
                pid.send_system_message(&self.system, SystemMessage::Stop);
            }
        }
    }

    fn try_restart_or_terminate(&mut self) {
        if self.extras.as_ref().is_some_and(|e| !e.children.is_empty()) {
            return;
        }
        match self.state {
            State::Restarting => {
                self.cancel_receive_timeout();
                self.restart();
            }
            State::Stopping => {
                self.cancel_receive_timeout();
                self.finalize_stop();
            }
            _ => {}
        }
    }

    fn restart(&mut self) {
        self.state = State::Alive;
        self.actor = Some((self.props.0.producer)(&self.system));
        self.system.metrics().spawn();
        self.self_pid
            .send_system_message(&self.system, SystemMessage::ResumeMailbox);
        self.invoke_lifecycle(Started);
        let stash = self
            .extras
            .as_mut()
            .map(|e| std::mem::take(&mut e.stash))
            .unwrap_or_default();
        for env in stash {
            self.invoke_user(env);
        }
    }

    fn finalize_stop(&mut self) {
        self.system.registry().remove(&self.self_pid);
        self.invoke_lifecycle(Stopped);
        let t = Terminated {
            who: self.self_pid.clone(),
            why: TerminatedReason::Stopped,
        };
        if let Some(e) = self.extras.as_mut() {
            for w in std::mem::take(&mut e.watchers) {
                w.send_system_message(&self.system, SystemMessage::Terminated(t.clone()));
            }
        }
        if let Some(p) = &self.parent {
            p.send_system_message(&self.system, SystemMessage::Terminated(t));
        }
        self.state = State::Stopped;
        // Drop the actor now: its resources go with the stop, not with the last PID.
        self.actor = None;
        self.extras = None;
    }

    fn restart_stats(&self) -> RestartStatistics {
        self.restart_stats
            .get_or_init(RestartStatistics::new)
            .clone()
    }

    /// A panic escaped while handling a message.
    pub(crate) fn escalate_panic(&mut self, payload: Box<dyn std::any::Any + Send>) {
        self.escalate_reason(FailureReason::from_panic(payload));
        self.current = Current::None;
    }

    fn escalate_reason(&mut self, reason: FailureReason) {
        let message_type = self.envelope().map(|e| e.message.type_name());
        Supervisor::escalate_failure(self, reason, message_type);
    }

    fn handle_failure(&mut self, f: Failure) {
        let strategy = self
            .actor
            .as_ref()
            .and_then(|a| a.supervisor_strategy())
            .or_else(|| self.props.0.supervisor.clone())
            .unwrap_or_else(|| self.system.default_strategy());
        strategy.handle_failure(
            &self.system,
            self,
            &f.who,
            &f.restart_stats,
            &f.reason,
            f.message_type,
        );
    }
}

fn run_decorators(
    decorators: &[ContextDecorator],
    ctx: &mut Context,
    inner: &mut dyn FnMut(&mut Context),
) {
    match decorators.split_first() {
        None => inner(ctx),
        Some((first, rest)) => first(ctx, &mut |c: &mut Context| run_decorators(rest, c, inner)),
    }
}

impl Supervisor for Context {
    fn children(&self) -> Vec<Pid> {
        Context::children(self)
    }
    fn escalate_failure(&self, reason: FailureReason, message_type: Option<&'static str>) {
        tracing::info!(pid = %self.self_pid, reason = %reason, "[ACTOR] Recovering");
        self.system.metrics().failure();
        let failure = Failure {
            who: self.self_pid.clone(),
            reason,
            restart_stats: self.restart_stats(),
            message_type,
        };
        self.self_pid
            .send_system_message(&self.system, SystemMessage::SuspendMailbox);
        match &self.parent {
            Some(parent) => {
                parent.send_system_message(&self.system, SystemMessage::Failure(failure))
            }
            None => self.system.default_strategy().handle_failure(
                &self.system,
                self,
                &failure.who,
                &failure.restart_stats,
                &failure.reason,
                failure.message_type,
            ),
        }
    }
    fn restart_children(&self, pids: &[Pid]) {
        for p in pids {
            p.send_system_message(&self.system, SystemMessage::Restart);
        }
    }
    fn stop_children(&self, pids: &[Pid]) {
        for p in pids {
            p.send_system_message(&self.system, SystemMessage::Stop);
        }
    }
    fn resume_children(&self, pids: &[Pid]) {
        for p in pids {
            p.send_system_message(&self.system, SystemMessage::ResumeMailbox);
        }
    }
}

/// The receive-timeout timer: one task per arming, whose deadline moves with each message.
pub(crate) struct TimeoutTimer {
    base: Instant,
    /// Nanoseconds after `base`; `u64::MAX` while a message is being processed.
    deadline: AtomicU64,
    fired: AtomicBool,
    cancelled: AtomicBool,
    /// The timer task waits for `reset` (it woke while a message was being processed).
    parked: AtomicBool,
    notify: tokio::sync::Notify,
}

impl TimeoutTimer {
    fn start(system: &ActorSystem, pid: &Pid, d: Duration) -> Arc<Self> {
        let t = Arc::new(TimeoutTimer {
            base: Instant::now(),
            deadline: AtomicU64::new(0),
            fired: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            notify: tokio::sync::Notify::new(),
        });
        t.reset(d);
        let (t2, system2, pid) = (t.clone(), system.clone(), pid.clone());
        system.runtime().spawn(async move {
            loop {
                if t2.deadline.load(Ordering::SeqCst) == u64::MAX {
                    // Paused while a message is processed: wait until `reset` re-arms it
                    // (sleeping until a far deadline would miss the new one).
                    t2.parked.store(true, Ordering::SeqCst);
                    if t2.deadline.load(Ordering::SeqCst) == u64::MAX {
                        t2.notify.notified().await;
                    }
                    t2.parked.store(false, Ordering::SeqCst);
                    if t2.cancelled.load(Ordering::Acquire) {
                        return;
                    }
                    continue;
                }
                let dl = t2.deadline_instant();
                tokio::select! {
                    _ = tokio::time::sleep_until(dl.into()) => {}
                    _ = t2.notify.notified() => {}
                }
                if t2.cancelled.load(Ordering::Acquire) {
                    return;
                }
                if Instant::now() >= t2.deadline_instant() {
                    t2.fired.store(true, Ordering::Release);
                    pid.send_user_message(&system2, MessageEnvelope::new(ReceiveTimeout));
                    return;
                }
            }
        });
        t
    }
    fn deadline_instant(&self) -> Instant {
        match self.deadline.load(Ordering::Acquire) {
            u64::MAX => Instant::now() + Duration::from_secs(3600),
            n => self.base + Duration::from_nanos(n),
        }
    }
    fn pause(&self) {
        self.deadline.store(u64::MAX, Ordering::Release);
    }
    fn reset(&self, d: Duration) {
        let n = (self.base.elapsed() + d)
            .as_nanos()
            .min(u64::MAX as u128 - 1) as u64;
        self.deadline.store(n, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            self.notify.notify_one();
        }
    }
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.notify.notify_one();
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Context>();
    is_send::<FuncActor>();
    let _ = into_boxed::<u8>;
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A detached context for unit tests of code that takes `&mut Context`.
    pub(crate) fn context(system: &ActorSystem) -> Context {
        let pid = system.new_local_pid("test");
        Context::new(system, Props::from_func(|_| {}), pid, None)
    }
}
