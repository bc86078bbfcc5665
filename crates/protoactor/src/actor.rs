//! Closure actors and the behavior stack. The [`Actor`] trait is defined with the context its
//! `receive` takes (`context/actor_props.rs`) and re-exported here.

use crate::context::Context;
pub use crate::context::{Actor, FuncActor};

/// Any `FnMut(&mut Context)` closure is an actor with its own state, so a producer can
/// return one:
///
/// ```
/// use protoactor::prelude::*;
/// let props = Props::from_producer(|| {
///     let mut count = 0u32;
///     move |ctx: &mut Context| {
///         if ctx.message().is::<u32>() {
///             count += 1;
///         }
///     }
/// });
/// # let _ = props;
/// ```
impl<F> Actor for F
where
    F: FnMut(&mut Context) + Send + 'static,
{
    fn receive(&mut self, ctx: &mut Context) {
        self(ctx)
    }
}

/// A receive function of an actor of type `A`, for [`Behavior`].
pub type ReceiveFn<A> = fn(&mut A, &mut Context);

/// A behavior stack, kept in the actor's state: `become` replaces the current handler,
/// `become_stacked` pushes one and `unbecome_stacked` pops back.
///
/// The actor's `receive` runs the current handler in one call,
/// `self.behavior.current()(self, ctx)`: [`current`](Behavior::current) returns a plain
/// `fn`, so `self` is free again when it is called (and a handler may `become_` freely).
/// An actor implementing `AsMut<Behavior<Self>>` can write `Behavior::receive(self, ctx)`.
///
/// ```
/// use protoactor::prelude::*;
///
/// struct Light { behavior: Behavior<Light>, flips: u32 }
///
/// impl Light {
///     fn off(&mut self, ctx: &mut Context) {
///         if ctx.message_as::<&str>() == Some(&"flip") { self.flips += 1; self.behavior.become_(Light::on); }
///     }
///     fn on(&mut self, ctx: &mut Context) {
///         if ctx.message_as::<&str>() == Some(&"flip") { self.flips += 1; self.behavior.become_(Light::off); }
///     }
/// }
///
/// impl Actor for Light {
///     fn receive(&mut self, ctx: &mut Context) {
///         self.behavior.current()(self, ctx)
///     }
/// }
/// let system = ActorSystem::new();
/// let light = system.root().spawn(&Props::from_producer(|| Light {
///     behavior: Behavior::new(Light::off),
///     flips: 0,
/// }));
/// system.root().send(&light, "flip");
/// ```
pub struct Behavior<A> {
    stack: Vec<ReceiveFn<A>>,
}

impl<A> std::fmt::Debug for Behavior<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behavior")
            .field("depth", &self.stack.len())
            .finish()
    }
}

impl<A> Behavior<A> {
    /// A stack with one handler.
    pub fn new(initial: ReceiveFn<A>) -> Self {
        Self {
            stack: vec![initial],
        }
    }
    /// Replaces the whole stack with `f`.
    pub fn become_(&mut self, f: ReceiveFn<A>) {
        self.stack.clear();
        self.stack.push(f);
    }
    /// Pushes `f` on top of the stack.
    pub fn become_stacked(&mut self, f: ReceiveFn<A>) {
        self.stack.push(f);
    }
    /// Pops the top handler (the last one is never popped).
    pub fn unbecome_stacked(&mut self) {
        if self.stack.len() > 1 {
            self.stack.pop();
        }
    }
    /// The handler on top.
    pub fn current(&self) -> ReceiveFn<A> {
        *self.stack.last().expect("a behavior stack is never empty")
    }
    /// How many handlers are stacked.
    pub fn depth(&self) -> usize {
        self.stack.len()
    }
    /// Calls the current handler (the usual body of `receive`).
    pub fn receive(actor: &mut A, ctx: &mut Context)
    where
        A: AsMut<Behavior<A>>,
    {
        let f = actor.as_mut().current();
        f(actor, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records which handler ran (calling needs a context, so the handlers are called
    /// through a tiny shim instead).
    struct S(&'static str);
    fn a(s: &mut S, _: &mut Context) {
        s.0 = "a";
    }
    fn b(s: &mut S, _: &mut Context) {
        s.0 = "b";
    }

    fn which(beh: &Behavior<S>) -> &'static str {
        // fn pointers cannot be compared reliably; tell them apart by their effect
        let f = beh.current();
        let mut s = S("");
        let system = crate::ActorSystem::new();
        let mut ctx = crate::context::tests_support::context(&system);
        f(&mut s, &mut ctx);
        system.shutdown();
        s.0
    }

    #[test]
    fn stack_push_pop_and_replace() {
        let mut beh = Behavior::<S>::new(a);
        beh.become_stacked(b);
        assert_eq!(beh.depth(), 2);
        assert_eq!(which(&beh), "b");
        beh.unbecome_stacked();
        assert_eq!(which(&beh), "a");
        beh.unbecome_stacked();
        assert_eq!(beh.depth(), 1);
        beh.become_stacked(b);
        beh.become_(a);
        assert_eq!(beh.depth(), 1);
        assert_eq!(which(&beh), "a");
    }
}
