//! The actor's lifecycle: system messages, start, stop, restart, watching, and failures
//! (escalation to the supervisor, and the supervisor side of a context).

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{Context, Current, State};
use crate::failure::{Failure, FailureReason, RestartStatistics};
use crate::message::{
    Message, MessageEnvelope, Restarting, Started, Stopped, Stopping, Terminated, TerminatedReason,
};
use crate::pid::Pid;
use crate::process::SystemMessage;
use crate::supervision::{default_strategy, Directive, Supervisor, SupervisorEvent};

impl Context {
    fn invoke_lifecycle<M: Message>(&mut self, msg: M) {
        if self.state < State::Stopping {
            return self.invoke_user(MessageEnvelope::new(msg));
        }
        // A stop, once begun, completes: a panic in `Stopping`, `Stopped` or a child's
        // `Terminated` must not unwind out of the stop sequence (a supervisor's restart
        // would undo the stop and leave the parent waiting). `escalate_reason` reports it.
        let r = catch_unwind(AssertUnwindSafe(|| {
            self.invoke_user(MessageEnvelope::new(msg))
        }));
        if let Err(payload) = r {
            self.escalate_reason(FailureReason::from_panic(payload));
            self.current = Current::NONE;
        }
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
                if let Some(e) = self.extras_mut() {
                    e.watchers.shift_remove(&watcher);
                }
            }
            SystemMessage::Stop => self.handle_stop(),
            SystemMessage::Terminated(t) => {
                if let Some(f) = self.family_mut() {
                    f.children.get_mut().remove(&t.who);
                }
                self.invoke_lifecycle(t);
                self.try_restart_or_terminate();
            }
            SystemMessage::Failure(f) => self.handle_failure(*f),
            SystemMessage::Restart => self.handle_restart(),
            SystemMessage::Continuation(c) => self.run_continuation(*c),
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
        if self.state >= State::Stopping {
            // a restart decided before the stop began must not undo it
            return;
        }
        self.state = State::Restarting;
        self.invoke_lifecycle(Restarting);
        self.stop_all_children();
        self.try_restart_or_terminate();
        self.system.metrics().restart();
    }

    fn stop_all_children(&mut self) {
        if let Some(c) = self.children_set() {
            for pid in c.borrow().iter().rev() {
                pid.send_system_message(&self.system, SystemMessage::Stop);
            }
        }
    }

    fn try_restart_or_terminate(&mut self) {
        if self.children_set().is_some_and(|c| !c.borrow().is_empty()) {
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
        self.actor = Some(self.props.0.producer.make(&self.system));
        self.system.metrics().spawn();
        self.self_pid
            .send_system_message(&self.system, SystemMessage::ResumeMailbox);
        self.invoke_lifecycle(Started);
        let stash = self
            .extras_mut()
            .map(|e| std::mem::take(&mut e.stash))
            .unwrap_or_default();
        for env in stash {
            self.invoke_user(env);
        }
    }

    fn finalize_stop(&mut self) {
        // Dead before anyone hears of the stop (as in protoactor-go): once a watcher has its
        // `Terminated`, a send to this PID is dead-lettered on the sender's thread, before
        // `send` returns, instead of being queued here and drained later.
        if let Some(p) = self.system.registry().remove(&self.self_pid) {
            p.mark_dead(&self.self_pid);
        }
        self.invoke_lifecycle(Stopped);
        let t = Terminated {
            who: self.self_pid.clone(),
            why: TerminatedReason::Stopped,
        };
        if let Some(e) = self.extras_mut() {
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
        if let Some(e) = self.extras_mut() {
            *e = Default::default();
        }
    }

    fn restart_stats(&self) -> RestartStatistics {
        self.family_or_init()
            .restart_stats
            .get_or_init(RestartStatistics::new)
            .clone()
    }

    /// A panic escaped while handling a message.
    pub(crate) fn escalate_panic(&mut self, payload: Box<dyn std::any::Any + Send>) {
        self.escalate_reason(FailureReason::from_panic(payload));
        self.current = Current::NONE;
    }

    pub(super) fn escalate_reason(&mut self, reason: FailureReason) {
        let message_type = self.envelope().map(|e| e.message.type_name());
        if self.state >= State::Stopping {
            return self.report_failure_while_stopping(reason, message_type);
        }
        Supervisor::escalate_failure(self, reason, message_type);
    }

    /// A failure after the stop began: no supervisor decides (the stop goes on), but it is
    /// logged and published as a `SupervisorEvent` with `Directive::Stop`.
    fn report_failure_while_stopping(
        &self,
        reason: FailureReason,
        message_type: Option<&'static str>,
    ) {
        tracing::error!(
            pid = %self.self_pid,
            reason = %reason,
            message = message_type,
            "[ACTOR] failed while stopping; the stop goes on"
        );
        self.system.metrics().failure();
        self.system.event_stream().publish(&SupervisorEvent {
            child: self.self_pid.clone(),
            reason,
            directive: Directive::Stop,
        });
    }

    fn handle_failure(&mut self, f: Failure) {
        let strategy = self
            .actor
            .as_ref()
            .and_then(|a| a.supervisor_strategy())
            .or_else(|| self.props.0.supervisor.clone())
            .unwrap_or_else(|| default_strategy());
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
                parent.send_system_message(&self.system, SystemMessage::Failure(Box::new(failure)))
            }
            None => default_strategy().handle_failure(
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
