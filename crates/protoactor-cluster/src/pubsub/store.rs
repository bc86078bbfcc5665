//! Where a topic keeps its subscriber list (Go's `KeyValueStore[*Subscribers]`). Go's
//! default store keeps nothing, so a topic that moves or restarts forgets every subscriber;
//! with a shared store here, the new activation loads them all.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::proto::Subscribers;

/// A topic's durable subscriber list, keyed by topic name. Called from the topic actor on
/// start (get) and after every change (set), so a slow store slows that topic only.
pub trait SubscriptionStore: Send + Sync + 'static {
    /// The subscribers saved for `topic` (`None` if none were saved).
    fn get(&self, topic: &str) -> Result<Option<Subscribers>, String>;
    /// Saves the subscribers of `topic`.
    fn set(&self, topic: &str, subscribers: &Subscribers) -> Result<(), String>;
}

/// Keeps nothing (Go's `EmptyKeyValueStore`): subscriptions live only in the topic actor.
#[derive(Debug, Default, Clone)]
pub struct NoStore;

impl SubscriptionStore for NoStore {
    fn get(&self, _topic: &str) -> Result<Option<Subscribers>, String> {
        Ok(None)
    }
    fn set(&self, _topic: &str, _subscribers: &Subscribers) -> Result<(), String> {
        Ok(())
    }
}

/// An in-memory store; clones share it, so members in one process (tests, the example) that
/// are given the same store keep subscriptions across a topic moving between them.
#[derive(Debug, Default, Clone)]
pub struct InMemoryStore(Arc<Mutex<HashMap<String, Subscribers>>>);

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl SubscriptionStore for InMemoryStore {
    fn get(&self, topic: &str) -> Result<Option<Subscribers>, String> {
        Ok(self.0.lock().get(topic).cloned())
    }
    fn set(&self, topic: &str, subscribers: &Subscribers) -> Result<(), String> {
        self.0.lock().insert(topic.to_string(), subscribers.clone());
        Ok(())
    }
}
