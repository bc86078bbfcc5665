//! Reentrancy: awaiting a future without blocking the actor, then continuing inside it
//! with the original message restored.

use std::num::NonZeroU64;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use super::invoke::run_decorators;
use super::{Actor, Context, Current};
use crate::message::MessageEnvelope;
use crate::process::{Continuation, SystemMessage};

/// The closure a [`Continuation`] carries (opaque to the process layer).
pub(super) type ContinuationFn = Box<dyn FnOnce(&mut dyn Actor, &mut Context) + Send>;

impl Context {
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
            let f: ContinuationFn = Box::new(move |a, c| continuation(a, c, out));
            pid.send_system_message(
                &system,
                SystemMessage::Continuation(Box::new(Continuation {
                    slot,
                    f: Box::new(f),
                })),
            );
        });
    }

    fn retain_current(&mut self) -> u64 {
        let current = std::mem::replace(&mut self.current, Current::NONE);
        let e = self.extras();
        let id = match current {
            Current::Slot(Some(id)) => {
                if let Some(s) = e.slots.get_mut(&id.get()) {
                    s.1 += 1;
                }
                id.get()
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
        self.current = Current::Slot(NonZeroU64::new(id));
        id
    }

    fn release_slot(&mut self, id: u64) {
        if let Some(e) = self.extras_mut() {
            if let Some(s) = e.slots.get_mut(&id) {
                s.1 -= 1;
                if s.1 == 0 {
                    e.slots.remove(&id);
                }
            }
        }
    }

    /// Runs a continuation made by [`Context::reenter`] (sent back as a system message).
    pub(super) fn run_continuation(&mut self, c: Continuation) {
        let slot = c.slot;
        let f = match c.f.downcast::<ContinuationFn>() {
            Ok(f) => *f,
            Err(_) => {
                tracing::error!(pid = %self.self_pid, "continuation of an unknown type dropped");
                return self.release_slot(slot);
            }
        };
        self.current = Current::Slot(NonZeroU64::new(slot));
        if let Some(mut actor) = self.actor.take() {
            // Through the context decorators, as the actor's receive: in Go a continuation
            // uses the decorated context, and tracing resumes the message's span there.
            let props = self.props.clone();
            let decorators = &props.0.context_decorators;
            let r = if decorators.is_empty() {
                catch_unwind(AssertUnwindSafe(|| f(&mut *actor, self)))
            } else {
                let mut f = Some(f);
                catch_unwind(AssertUnwindSafe(|| {
                    run_decorators(decorators, self, &mut |c| {
                        if let Some(f) = f.take() {
                            f(&mut *actor, c)
                        }
                    })
                }))
            };
            self.actor = Some(actor);
            self.current = Current::NONE;
            self.release_slot(slot);
            if let Err(p) = r {
                resume_unwind(p);
            }
            if let Some(reason) = self.take_pending_failure() {
                self.escalate_reason(reason);
            }
        } else {
            self.current = Current::NONE;
            self.release_slot(slot);
        }
    }
}
