//! Delivering a message to the actor: receiver middleware, context decorators, the
//! built-in `PoisonPill` and `Touch`, and the receive-timeout pause around each message.

use std::any::TypeId;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use super::{ActorSlot, Context, ContextDecorator, Current, State};
use crate::message::{MessageEnvelope, PoisonPill, Touch, Touched};

impl Context {
    /// Runs the actor (through the context decorators) on the current message.
    #[inline]
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
        if let Some(reason) = self.take_pending_failure() {
            self.escalate_reason(reason);
        }
    }

    /// The innermost step of the receiver chain (protoactor-go's `Receive(envelope)`).
    #[inline]
    pub(crate) fn receive_envelope(&mut self, env: MessageEnvelope) {
        self.current = Current::Owned(env);
        self.default_receive();
        self.current = Current::NONE;
    }

    #[inline]
    fn default_receive(&mut self) {
        // One virtual `type_id` call for both checks.
        let ty = self.message().message_type_id();
        if ty == TypeId::of::<PoisonPill>() {
            let me = self.self_pid.clone();
            return me.resolve(&self.system).stop(&me);
        }
        // One call site, so that `invoke_actor` inlines here (two made it a call of its
        // own per message).
        self.invoke_actor();
        if ty == TypeId::of::<Touch>() {
            self.respond(Touched {
                who: self.self_pid.clone(),
            });
        }
    }

    #[inline]
    fn process_message(&mut self, env: MessageEnvelope) {
        match self.props.0.receiver_chain.get() {
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
        let pause = self.pause_receive_timeout(&env);
        self.process_message(env);
        self.resume_receive_timeout(pause);
    }
}

/// A run of user messages with the actor held out of the context by the mailbox's runner
/// (`actor_process.rs`), instead of taken out and put back around each message.
impl Context {
    /// Takes the actor out for a run of [`Context::invoke_user_held`] calls; `None` when it
    /// must stay in the context (receiver middleware and context decorators reach the actor
    /// through it) or there is none.
    #[inline]
    pub(crate) fn hold_actor(&mut self) -> Option<ActorSlot> {
        if self.props.0.receiver_chain.get().is_some()
            || !self.props.0.context_decorators.is_empty()
        {
            return None;
        }
        self.actor.take()
    }

    /// Puts a held actor back: before a system message, at the end of the run, and after a
    /// panic in `receive` (which unwinds to the runner with the actor still held).
    #[inline]
    pub(crate) fn return_actor(&mut self, held: &mut Option<ActorSlot>) {
        if let Some(actor) = held.take() {
            self.actor = Some(actor);
        }
    }

    /// [`Context::invoke_user`] with the actor `held` by the caller: no move of the actor out
    /// of the context and back, and no `catch_unwind`, per message (about 20 instructions).
    /// The same steps in the same order; the actor goes back into the context first where
    /// a step needs it there (a `PoisonPill`'s stop, a failure's escalation, an actor
    /// already stopped).
    #[inline]
    pub(crate) fn invoke_user_held(&mut self, held: &mut Option<ActorSlot>, env: MessageEnvelope) {
        let Some(actor) = held.as_mut() else {
            return self.invoke_user(env);
        };
        if self.state == State::Stopped {
            self.return_actor(held);
            return self.invoke_user(env);
        }
        let pause = self.pause_receive_timeout(&env);
        self.current = Current::Owned(env);
        let ty = self.message().message_type_id();
        if ty == TypeId::of::<PoisonPill>() {
            self.return_actor(held);
            let me = self.self_pid.clone();
            me.resolve(&self.system).stop(&me);
        } else {
            actor.receive(self);
            if let Some(reason) = self.take_pending_failure() {
                self.return_actor(held);
                self.escalate_reason(reason);
            }
            if ty == TypeId::of::<Touch>() {
                self.respond(Touched {
                    who: self.self_pid.clone(),
                });
            }
        }
        if let Current::Owned(env) = std::mem::replace(&mut self.current, Current::NONE) {
            env.dispose();
        }
        self.resume_receive_timeout(pause);
    }
}

pub(super) fn run_decorators(
    decorators: &[ContextDecorator],
    ctx: &mut Context,
    inner: &mut dyn FnMut(&mut Context),
) {
    match decorators.split_first() {
        None => inner(ctx),
        Some((first, rest)) => first(ctx, &mut |c: &mut Context| run_decorators(rest, c, inner)),
    }
}
