//! The root context: sending and spawning from outside any actor.

use std::sync::Arc;
use std::time::Duration;

use crate::future::ActorFuture;
use crate::message::{Message, MessageEnvelope, MessageHeader, PoisonPill};
use crate::pid::Pid;
use crate::process::SystemMessage;
use crate::props::{
    build_sender_chain, build_spawn_chain, validate_name, Props, SenderContext, SenderFunc,
    SenderMiddleware, SpawnError, SpawnFunc, SpawnMiddleware,
};
use crate::registry::with_joined;
use crate::supervision::SupervisorStrategy;
use crate::system::ActorSystem;

/// Sends and spawns from outside actors. Requests from the root context carry no sender
/// (use [`RootContext::request_future`] to get a response).
///
/// ```
/// use protoactor::prelude::*;
/// let system = ActorSystem::new();
/// let pid = system.root().spawn(&Props::from_func(|ctx| {
///     if let Some(name) = ctx.message_as::<&str>() { println!("Hello {name}"); }
/// }));
/// system.root().send(&pid, "Roger");
/// ```
#[derive(Clone)]
pub struct RootContext {
    system: ActorSystem,
    header: Option<Arc<MessageHeader>>,
    sender_middleware: Vec<SenderMiddleware>,
    sender_chain: Option<SenderFunc>,
    spawn_middleware: Vec<SpawnMiddleware>,
    spawn_chain: Option<SpawnFunc>,
    guardian: Option<Arc<dyn SupervisorStrategy>>,
}

impl RootContext {
    pub(crate) fn new(system: ActorSystem) -> Self {
        Self {
            system,
            header: None,
            sender_middleware: Vec::new(),
            sender_chain: None,
            spawn_middleware: Vec::new(),
            spawn_chain: None,
            guardian: None,
        }
    }

    /// The actor system.
    pub fn system(&self) -> &ActorSystem {
        &self.system
    }

    /// A root context whose messages carry `header`.
    pub fn with_header(mut self, header: MessageHeader) -> Self {
        self.header = Some(Arc::new(header));
        self
    }
    /// A root context with sender middleware (first added runs outermost).
    pub fn with_sender_middleware<F>(mut self, middleware: F) -> Self
    where
        F: Fn(SenderFunc) -> SenderFunc + Send + Sync + 'static,
    {
        self.sender_middleware.push(Arc::new(middleware));
        self.sender_chain = Some(build_sender_chain(&self.sender_middleware));
        self
    }
    /// A root context with spawn middleware.
    pub fn with_spawn_middleware<F>(mut self, middleware: F) -> Self
    where
        F: Fn(SpawnFunc) -> SpawnFunc + Send + Sync + 'static,
    {
        self.spawn_middleware.push(Arc::new(middleware));
        self.spawn_chain = Some(build_spawn_chain(&self.spawn_middleware));
        self
    }
    /// A root context whose spawns are supervised by a guardian with `strategy`.
    pub fn with_guardian(mut self, strategy: impl SupervisorStrategy) -> Self {
        self.guardian = Some(Arc::new(strategy));
        self
    }

    /// Sends an envelope through the sender middleware (adding this context's header if the
    /// envelope has none).
    pub fn send_envelope(&self, target: &Pid, mut envelope: MessageEnvelope) {
        if envelope.header.is_none() {
            envelope.header = self.header.clone();
        }
        match &self.sender_chain {
            None => target.send_user_message(&self.system, envelope),
            Some(chain) => chain(
                &SenderContext {
                    system: &self.system,
                    self_pid: None,
                },
                target,
                envelope,
            ),
        }
    }
    /// Sends `message` to `target`.
    #[inline]
    pub fn send<M: Message>(&self, target: &Pid, message: M) {
        self.send_envelope(target, MessageEnvelope::new(message))
    }
    /// Sends with no sender (protoactor-go's `RootContext.Request` sets none).
    pub fn request<M: Message>(&self, target: &Pid, message: M) {
        self.send(target, message)
    }
    /// Sends with `sender` as the sender.
    pub fn request_with_custom_sender<M: Message>(&self, target: &Pid, message: M, sender: &Pid) {
        self.send_envelope(
            target,
            MessageEnvelope::new(message).with_sender(Some(sender.clone())),
        )
    }
    /// Sends and returns a future of the response (`Duration::MAX`: no timeout).
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

    /// Spawns a top-level actor with a generated name.
    ///
    /// On failure (system shut down) the error is logged and the PID leads to dead letters.
    pub fn spawn(&self, props: &Props) -> Pid {
        let name = self.system.registry().next_id_buf();
        self.spawn_or_dead(props, name.as_str())
    }
    /// Spawns a top-level actor named `prefix` + a generated id.
    pub fn spawn_prefix(&self, props: &Props, prefix: &str) -> Pid {
        let generated = self.system.registry().next_id_buf();
        with_joined(&[prefix, generated.as_str()], |name| {
            self.spawn_or_dead(props, name)
        })
    }
    fn spawn_or_dead(&self, props: &Props, name: &str) -> Pid {
        self.spawn_named(props, name).unwrap_or_else(|e| {
            tracing::error!(error = %e, "spawn failed");
            Pid::with_parts(self.system.registry().address(), Arc::from(name), 0)
        })
    }
    /// Spawns a top-level actor named `name`.
    ///
    /// Fails with [`SpawnError::InvalidName`] for an empty name or one containing `/`.
    pub fn spawn_named(&self, props: &Props, name: &str) -> Result<Pid, SpawnError> {
        validate_name(name)?;
        let guardian = props.0.guardian.clone().or_else(|| self.guardian.clone());
        let parent = guardian.map(|g| self.system.guardians().guardian_pid(&self.system, g));
        let props = if props.0.guardian.is_some() {
            // the guardian is the parent now; the props spawn normally below it
            let mut p = props.clone();
            Arc::make_mut(&mut p.0).guardian = None;
            p
        } else {
            props.clone()
        };
        match &self.spawn_chain {
            Some(chain) => chain(&self.system, name, &props, parent.as_ref()),
            None => props.spawn(&self.system, name, parent.as_ref()),
        }
    }

    /// Stops `pid` at once.
    pub fn stop(&self, pid: &Pid) {
        pid.resolve(&self.system).stop(pid);
    }
    /// Stops `pid`; the future completes with `Terminated` when it is gone (10 s timeout).
    pub fn stop_future(&self, pid: &Pid) -> ActorFuture {
        stop_future(&self.system, pid)
    }
    /// Stops `pid` after the messages already in its mailbox.
    pub fn poison(&self, pid: &Pid) {
        pid.send_user_message(&self.system, MessageEnvelope::new(PoisonPill));
    }
    /// Poisons `pid`; the future completes with `Terminated` when it is gone (10 s timeout).
    pub fn poison_future(&self, pid: &Pid) -> ActorFuture {
        poison_future(&self.system, pid)
    }
}

fn watched_future(system: &ActorSystem, pid: &Pid) -> ActorFuture {
    let fut = ActorFuture::new(system, Duration::from_secs(10));
    pid.send_system_message(
        system,
        SystemMessage::Watch {
            watcher: fut.pid().clone(),
        },
    );
    fut
}

pub(crate) fn stop_future(system: &ActorSystem, pid: &Pid) -> ActorFuture {
    let fut = watched_future(system, pid);
    pid.resolve(system).stop(pid);
    fut
}

pub(crate) fn poison_future(system: &ActorSystem, pid: &Pid) -> ActorFuture {
    let fut = watched_future(system, pid);
    pid.send_user_message(system, MessageEnvelope::new(PoisonPill));
    fut
}
