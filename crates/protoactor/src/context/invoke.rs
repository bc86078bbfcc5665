//! Delivering a message to the actor: receiver middleware, context decorators, the
//! built-in `PoisonPill` and `Touch`, and the receive-timeout pause around each message.

use std::any::TypeId;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use super::{Context, ContextDecorator, Current, State};
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
        let pause = self.pause_receive_timeout(&*env.message);
        self.process_message(env);
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
