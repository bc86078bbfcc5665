//! Dead letters: where messages to missing processes go. Each one is published as a
//! [`DeadLetterEvent`]; requesters get a [`DeadLetterResponse`]; watchers of a missing
//! process get `Terminated { why: NotFound }`.

use crate::message::{
    BoxedMessage, DeadLetterResponse, MessageEnvelope, Terminated, TerminatedReason,
};
use crate::pid::Pid;
use crate::process::{Process, SystemMessage};
use crate::system::{ActorSystem, WeakSystem};
use crate::throttle::{Throttle, Valve};

/// Published on the event stream for every message that could not be delivered.
pub struct DeadLetterEvent {
    /// Where the message was going.
    pub pid: Pid,
    /// The message.
    pub message: BoxedMessage,
    /// Who sent it, if known.
    pub sender: Option<Pid>,
}

impl std::fmt::Debug for DeadLetterEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterEvent")
            .field("pid", &self.pid)
            .field("message", &self.message.type_name())
            .field("sender", &self.sender)
            .finish()
    }
}

pub(crate) struct DeadLetterProcess {
    system: WeakSystem,
    throttle: Throttle,
}

impl DeadLetterProcess {
    pub(crate) fn new(system: WeakSystem, throttle: Throttle) -> Self {
        Self { system, throttle }
    }

    fn log(&self, system: &ActorSystem, ev: &DeadLetterEvent) {
        if system
            .message_traits()
            .ignores_dead_letter_logging(&*ev.message)
        {
            return;
        }
        if ev.sender.is_some() && !system.config().dead_letter_request_logging {
            return;
        }
        let (valve, dropped) = self.throttle.should_throttle();
        if dropped > 0 {
            tracing::info!(throttled = dropped, "dead letters were throttled");
        }
        match valve {
            Valve::Open | Valve::Closing => tracing::info!(
                pid = %ev.pid,
                message = ev.message.type_name(),
                sender = ?ev.sender,
                "dead letter"
            ),
            Valve::Closed => {}
        }
    }
}

impl Process for DeadLetterProcess {
    fn send_user_message(&self, pid: &Pid, envelope: MessageEnvelope) {
        let Some(system) = self.system.upgrade() else {
            return;
        };
        system.metrics().dead_letter();
        let (message, sender, _) = envelope.into_parts();
        let ev = DeadLetterEvent {
            pid: pid.clone(),
            message,
            sender,
        };
        self.log(&system, &ev);
        system.event_stream().publish(&ev);
        if let Some(sender) = &ev.sender {
            if !ev.message.is::<DeadLetterResponse>() {
                sender.send_user_message(
                    &system,
                    MessageEnvelope::new(DeadLetterResponse {
                        target: Some(pid.clone()),
                    }),
                );
            }
        }
    }

    fn send_system_message(&self, pid: &Pid, message: SystemMessage) {
        let Some(system) = self.system.upgrade() else {
            return;
        };
        match message {
            SystemMessage::Watch { watcher } => {
                watcher.send_system_message(
                    &system,
                    SystemMessage::Terminated(Terminated {
                        who: pid.clone(),
                        why: TerminatedReason::NotFound,
                    }),
                );
            }
            // A dead actor has nothing to unwatch, stop or resume.
            SystemMessage::Unwatch { .. }
            | SystemMessage::Stop
            | SystemMessage::SuspendMailbox
            | SystemMessage::ResumeMailbox => {}
            other => {
                let name = other.name();
                let ev = DeadLetterEvent {
                    pid: pid.clone(),
                    message: other.into_user_message().unwrap_or(Box::new(name)),
                    sender: None,
                };
                system.metrics().dead_letter();
                self.log(&system, &ev);
                system.event_stream().publish(&ev);
            }
        }
    }
}
