//! A synchronous publish/subscribe bus, one per actor system.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::message::Message;

type Handler = Box<dyn Fn(&dyn Message) + Send + Sync>;
type Predicate = Box<dyn Fn(&dyn Message) -> bool + Send + Sync>;

struct Sub {
    id: u64,
    handler: Handler,
    predicate: Option<Predicate>,
    active: AtomicBool,
}

/// A subscription; pass it to [`EventStream::unsubscribe`] to stop receiving events.
/// Dropping it does **not** unsubscribe: the handler stays subscribed for the system's life
/// (as protoactor-go's `*Subscription`), so keep it when the handler should stop some day,
/// and write `let _ = stream.subscribe(..)` where it is meant to stay for the system's life.
#[derive(Clone)]
#[must_use = "dropping a Subscription does not unsubscribe; keep it to unsubscribe later, or `let _ =` it to subscribe for the system's life"]
pub struct Subscription {
    sub: Arc<Sub>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("active", &self.is_active())
            .finish()
    }
}

impl Subscription {
    /// True until unsubscribed.
    pub fn is_active(&self) -> bool {
        self.sub.active.load(Ordering::Acquire)
    }
}

/// Publishes events to subscribers synchronously, on the publisher's thread.
///
/// ```
/// use protoactor::{ActorSystem, EventStream};
/// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
/// let system = ActorSystem::new();
/// let seen = Arc::new(AtomicUsize::new(0));
/// let s = seen.clone();
/// let sub = system.event_stream().subscribe_to::<u32, _>(move |n| { s.fetch_add(*n as usize, Ordering::SeqCst); });
/// system.event_stream().publish(&5u32);
/// system.event_stream().publish(&"ignored");
/// system.event_stream().unsubscribe(&sub);
/// system.event_stream().publish(&7u32);
/// assert_eq!(seen.load(Ordering::SeqCst), 5);
/// ```
pub struct EventStream {
    subs: ArcSwap<Vec<Arc<Sub>>>,
    write: Mutex<()>,
    next: AtomicU64,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("subscribers", &self.subs.load().len())
            .finish()
    }
}

impl Default for EventStream {
    fn default() -> Self {
        Self::new()
    }
}

impl EventStream {
    /// An empty stream.
    pub fn new() -> Self {
        Self {
            subs: ArcSwap::from_pointee(Vec::new()),
            write: Mutex::new(()),
            next: AtomicU64::new(1),
        }
    }

    fn add(&self, handler: Handler, predicate: Option<Predicate>) -> Subscription {
        let sub = Arc::new(Sub {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            handler,
            predicate,
            active: AtomicBool::new(true),
        });
        let _g = self.write.lock();
        let mut v = Vec::clone(&self.subs.load());
        v.push(sub.clone());
        self.subs.store(Arc::new(v));
        Subscription { sub }
    }

    /// Subscribes to every event.
    pub fn subscribe<F>(&self, handler: F) -> Subscription
    where
        F: Fn(&dyn Message) + Send + Sync + 'static,
    {
        self.add(Box::new(handler), None)
    }

    /// Subscribes to the events for which `predicate` is true.
    pub fn subscribe_with_predicate<F, P>(&self, handler: F, predicate: P) -> Subscription
    where
        F: Fn(&dyn Message) + Send + Sync + 'static,
        P: Fn(&dyn Message) -> bool + Send + Sync + 'static,
    {
        self.add(Box::new(handler), Some(Box::new(predicate)))
    }

    /// Subscribes to the events of type `T`.
    pub fn subscribe_to<T, F>(&self, handler: F) -> Subscription
    where
        T: Message,
        F: Fn(&T) + Send + Sync + 'static,
    {
        self.add(
            Box::new(move |m: &dyn Message| {
                if let Some(t) = m.downcast_ref::<T>() {
                    handler(t)
                }
            }),
            None,
        )
    }

    /// Removes a subscription.
    pub fn unsubscribe(&self, sub: &Subscription) {
        sub.sub.active.store(false, Ordering::Release);
        let _g = self.write.lock();
        let v: Vec<_> = self
            .subs
            .load()
            .iter()
            .filter(|s| s.id != sub.sub.id)
            .cloned()
            .collect();
        self.subs.store(Arc::new(v));
    }

    /// The number of subscriptions.
    pub fn len(&self) -> usize {
        self.subs.load().len()
    }

    /// True if nobody subscribed.
    pub fn is_empty(&self) -> bool {
        self.subs.load().is_empty()
    }

    /// Publishes an event to every matching subscriber, synchronously.
    pub fn publish(&self, event: &dyn Message) {
        let subs = self.subs.load();
        for s in subs.iter() {
            if !s.active.load(Ordering::Acquire) {
                continue;
            }
            if let Some(p) = &s.predicate {
                if !p(event) {
                    continue;
                }
            }
            (s.handler)(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn predicate_filters_events() {
        let es = EventStream::new();
        let n = Arc::new(AtomicUsize::new(0));
        let n2 = n.clone();
        let _ = es.subscribe_with_predicate(
            move |_| {
                n2.fetch_add(1, Ordering::SeqCst);
            },
            |m| m.downcast_ref::<i32>().is_some_and(|v| *v > 10),
        );
        es.publish(&5i32);
        es.publish(&50i32);
        es.publish(&"x");
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_handler_may_subscribe_while_publishing() {
        let es = Arc::new(EventStream::new());
        let es2 = es.clone();
        let _ = es.subscribe(move |_| {
            let _ = es2.subscribe(|_| {});
        });
        es.publish(&1u8);
        assert_eq!(es.len(), 2);
    }
}
