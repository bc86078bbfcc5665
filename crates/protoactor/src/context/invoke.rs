//! Delivering a message to the actor: receiver middleware, context decorators, the
//! built-in `PoisonPill` and `Touch`, and the receive-timeout pause around each message.

use std::any::TypeId;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use super::receive_timeout::TimerPause;
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

    /// A `PoisonPill`'s stop: the actor stops itself as a `stop` of its PID would.
    #[inline(always)]
    fn stop_self(&mut self) {
        let me = self.self_pid.clone();
        me.resolve(&self.system).stop(&me);
    }

    /// A `Touch`'s answer: `Touched` with this actor's PID.
    #[inline(always)]
    fn answer_touch(&mut self) {
        self.respond(Touched {
            who: self.self_pid.clone(),
        });
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
            return self.stop_self();
        }
        // One call site, so that `invoke_actor` inlines here (two made it a call of its
        // own per message).
        self.invoke_actor();
        if ty == TypeId::of::<Touch>() {
            self.answer_touch();
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
    ///
    /// `received` runs first, with the message already current (the mailbox middleware's
    /// `message_received`). The envelope goes straight into the current-message slot, and
    /// everything after reads it there: passed on by value through the steps before it (the
    /// hook's, the held actor's), it was copied to a new stack slot at each (about 12
    /// instructions per message, callgrind).
    #[inline]
    pub(crate) fn invoke_user_held(
        &mut self,
        held: &mut Option<ActorSlot>,
        env: MessageEnvelope,
        received: impl FnOnce(&Context),
    ) {
        // Between messages the slot is empty (`Current::NONE`): nothing to drop (the drop's
        // test of the old value was 2 instructions per message).
        debug_assert!(matches!(self.current, Current::Slot(None)));
        std::mem::forget(std::mem::replace(&mut self.current, Current::Owned(env)));
        received(self);
        // The common case inline: the actor held and no rarely used state (so no receive
        // timeout to pause and no failure pending); the rest out of line.
        let actor = match held {
            Some(actor) if self.rare.get().is_none() => actor,
            _ => return self.invoke_current_held(held),
        };
        // The runner returns once the actor stops (`is_stopped` after every message), so
        // a held actor is never a stopped one's.
        debug_assert!(self.state != State::Stopped);
        let ty = self.message().message_type_id();
        if ty == TypeId::of::<PoisonPill>() {
            self.return_actor(held);
            self.stop_self();
        } else {
            actor.receive(self);
            if self.rare.get().is_some() {
                // Made during `receive`: by `fail`, `set_receive_timeout`, a watch, a
                // child, ... One test here for both the pending failure and the timer.
                return self.after_receive_rare(held, ty);
            }
            if ty == TypeId::of::<Touch>() {
                self.answer_touch();
            }
        }
        self.dispose_current();
    }

    /// Drops the current message, inline (see [`MessageEnvelope::dispose`]).
    #[inline(always)]
    fn dispose_current(&mut self) {
        if let Current::Owned(env) = std::mem::replace(&mut self.current, Current::NONE) {
            env.dispose();
        }
    }

    /// After `receive` on the paths with the context's rarely used state: a failure set by
    /// `fail` goes to the supervisor (the actor back into the context first), and a `Touch`
    /// is answered.
    #[inline(always)]
    fn escalate_failure_and_answer_touch(&mut self, held: &mut Option<ActorSlot>, ty: TypeId) {
        if let Some(reason) = self.take_pending_failure() {
            self.return_actor(held);
            self.escalate_reason(reason);
        }
        if ty == TypeId::of::<Touch>() {
            self.answer_touch();
        }
    }

    /// The rest of [`Context::invoke_user_held`] when `receive` made the context's rarely used
    /// state: a failure set by `fail` goes to the supervisor, and a receive timeout set now
    /// starts counting after this message.
    #[inline(never)]
    fn after_receive_rare(&mut self, held: &mut Option<ActorSlot>, ty: TypeId) {
        self.escalate_failure_and_answer_touch(held, ty);
        self.dispose_current();
        // No timer before the message (there was no rarely used state): one set during it
        // is armed from now on.
        self.resume_receive_timeout(TimerPause::NO_TIMER);
    }

    /// [`Context::invoke_user_held`] for the current message when the actor is not held, or
    /// the context has its rarely used state (a receive timeout, watchers, children, ...).
    #[inline(never)]
    fn invoke_current_held(&mut self, held: &mut Option<ActorSlot>) {
        let Current::Owned(env) = std::mem::replace(&mut self.current, Current::NONE) else {
            unreachable!("invoke_user_held made the message current");
        };
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
            self.stop_self();
        } else {
            actor.receive(self);
            self.escalate_failure_and_answer_touch(held, ty);
        }
        self.dispose_current();
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
