//! Middleware propagation (protoactor-go's `actor/middleware/propagator`): spawn, sender and
//! receiver middleware and context decorators that every descendant inherits, so one setting
//! at the root of a tree covers the whole tree.
//!
//! ```
//! use protoactor::prelude::*;
//! use protoactor::middleware::{self, MiddlewarePropagation};
//! let tracing = MiddlewarePropagation::new()
//!     .with_receiver_middleware(middleware::receive_logger("in"))
//!     .with_sender_middleware(middleware::send_logger("out"));
//! // The actor, its children, their children, ... all log what they receive and send.
//! let props = Props::from_func(|_| {}).with_propagated(&tracing);
//! # let _ = props;
//! ```

use std::sync::Arc;

use crate::middleware_chain::Middleware;
use crate::props::{ContextDecorator, Props, ReceiverFunc, SenderFunc, SpawnFunc};

/// Middleware and decorators handed down to every descendant: each spawn of an actor that
/// carries a propagation configures the child's props with it (the child's own middleware
/// stays outermost, as Go appends the propagated ones), and the child passes it on.
///
/// Install it with [`Props::with_propagated`] (the actor and all its descendants), or put
/// [`spawn_middleware`](MiddlewarePropagation::spawn_middleware) on a root context (every
/// actor it spawns and their descendants). Unlike Go, where forwarding to grandchildren
/// takes `WithItselfForwarded`, a propagation always forwards itself: that is its purpose.
/// A propagation is applied to a props at most once, so props reused down the tree do not
/// stack the same middleware twice.
#[derive(Clone, Default)]
pub struct MiddlewarePropagation(Arc<PropagationInner>);

impl Props {
    /// Installs `propagation` on these props and hands it down: this actor and every
    /// descendant get its middleware and decorators (after their own), as protoactor-go's
    /// middleware propagator does.
    pub fn with_propagated(self, propagation: &MiddlewarePropagation) -> Self {
        propagation.apply(&self)
    }
}

#[derive(Default)]
struct PropagationInner {
    spawn: Vec<Middleware<SpawnFunc>>,
    sender: Vec<Middleware<SenderFunc>>,
    receiver: Vec<Middleware<ReceiverFunc>>,
    decorators: Vec<ContextDecorator>,
}

impl std::fmt::Debug for MiddlewarePropagation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiddlewarePropagation")
            .field("spawn", &self.0.spawn.len())
            .field("sender", &self.0.sender.len())
            .field("receiver", &self.0.receiver.len())
            .field("decorators", &self.0.decorators.len())
            .finish()
    }
}

impl MiddlewarePropagation {
    /// Propagates nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn edit(mut self, f: impl FnOnce(&mut PropagationInner)) -> Self {
        // Built before first use; a clone already handed out keeps what it had.
        let mut inner = PropagationInner {
            spawn: self.0.spawn.clone(),
            sender: self.0.sender.clone(),
            receiver: self.0.receiver.clone(),
            decorators: self.0.decorators.clone(),
        };
        f(&mut inner);
        self.0 = Arc::new(inner);
        self
    }

    /// Adds spawn middleware every descendant runs around spawning its children.
    pub fn with_spawn_middleware<F>(self, middleware: F) -> Self
    where
        F: Fn(SpawnFunc) -> SpawnFunc + Send + Sync + 'static,
    {
        self.edit(|p| p.spawn.push(Arc::new(middleware)))
    }
    /// Adds sender middleware every descendant sends through.
    pub fn with_sender_middleware<F>(self, middleware: F) -> Self
    where
        F: Fn(SenderFunc) -> SenderFunc + Send + Sync + 'static,
    {
        self.edit(|p| p.sender.push(Arc::new(middleware)))
    }
    /// Adds receiver middleware every descendant receives through.
    pub fn with_receiver_middleware<F>(self, middleware: F) -> Self
    where
        F: Fn(ReceiverFunc) -> ReceiverFunc + Send + Sync + 'static,
    {
        self.edit(|p| p.receiver.push(Arc::new(middleware)))
    }
    /// Adds a context decorator every descendant runs under.
    pub fn with_context_decorator<F>(self, decorator: F) -> Self
    where
        F: Fn(&mut crate::context::Context, &mut dyn FnMut(&mut crate::context::Context))
            + Send
            + Sync
            + 'static,
    {
        self.edit(|p| p.decorators.push(Arc::new(decorator)))
    }

    /// Spawn middleware that configures each spawned props with this propagation (for a
    /// root context's [`with_spawn_middleware`](crate::RootContext::with_spawn_middleware),
    /// or props' own).
    pub fn spawn_middleware(&self) -> impl Fn(SpawnFunc) -> SpawnFunc + Send + Sync + 'static {
        let me = self.clone();
        move |next: SpawnFunc| -> SpawnFunc {
            let me = me.clone();
            Arc::new(move |system, id, props, parent| next(system, id, &me.apply(props), parent))
        }
    }

    /// `props` with this propagation's middleware and decorators added after its own, and
    /// with the forwarding spawn middleware; unchanged if it already has this propagation.
    pub(crate) fn apply(&self, props: &Props) -> Props {
        let me = Arc::as_ptr(&self.0);
        if props
            .0
            .propagations
            .iter()
            .any(|p| std::ptr::addr_eq(Arc::as_ptr(p), me))
        {
            return props.clone();
        }
        let forward: Middleware<SpawnFunc> = Arc::new(self.spawn_middleware());
        props.clone().edit_inner(|p| {
            p.propagations.push(self.0.clone() as _);
            // Forwarding runs first, so this propagation's own spawn middleware sees the
            // configured child props.
            for m in std::iter::once(&forward).chain(self.0.spawn.iter()) {
                p.spawn_chain.push(m.clone(), crate::props::spawn_base());
            }
            for m in &self.0.sender {
                p.sender_chain.push(m.clone(), crate::props::sender_base());
            }
            for m in &self.0.receiver {
                p.receiver_chain
                    .push(m.clone(), crate::props::receiver_base());
            }
            p.context_decorators
                .extend(self.0.decorators.iter().cloned());
        })
    }
}
