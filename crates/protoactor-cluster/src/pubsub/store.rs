//! Where a topic keeps its subscriber list (Go's `KeyValueStore[*Subscribers]`). Go's
//! default store keeps nothing, so a topic that moves or restarts forgets every subscriber;
//! with a shared store here, the new activation loads them all.
//!
//! Durable stores: [`ProviderStore`] (feature `persistence`) keeps the lists in any
//! `protoactor-persistence` provider, e.g. its `SqliteProvider` (one file shared by the
//! members of one machine) or `PostgresProvider` (a server shared by every member).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::proto::Subscribers;

/// A topic's durable subscriber list, keyed by topic name. Called from the topic actor on
/// start (get) and after every change (set), so a slow store slows that topic only.
///
/// A store error never stops the topic: it logs the error (topic and store named), publishes
/// a [`StoreFailure`] on the actor system's event stream and keeps serving from memory.
pub trait SubscriptionStore: Send + Sync + 'static {
    /// What the store is, for error messages (`"sqlite:/var/lib/app.db"`); never a password.
    fn describe(&self) -> String {
        std::any::type_name::<Self>().to_string()
    }
    /// The subscribers saved for `topic` (`None` if none were saved).
    fn get(&self, topic: &str) -> Result<Option<Subscribers>, String>;
    /// Saves the subscribers of `topic`.
    fn set(&self, topic: &str, subscribers: &Subscribers) -> Result<(), String>;
}

/// A subscription store failed for a topic (published on the event stream of the topic's
/// node; also logged). The topic keeps its subscribers in memory meanwhile.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreFailure {
    /// The topic.
    pub topic: String,
    /// `"load"` (on activation) or `"save"` (after a change).
    pub operation: &'static str,
    /// The store ([`SubscriptionStore::describe`]).
    pub store: String,
    /// The store's error.
    pub error: String,
}

impl std::fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pubsub topic {:?}: cannot {} its subscriptions in {}: {}",
            self.topic, self.operation, self.store, self.error
        )
    }
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

#[cfg(feature = "persistence")]
#[cfg_attr(docsrs, doc(cfg(feature = "persistence")))]
pub use provider::ProviderStore;

#[cfg(feature = "persistence")]
mod provider {
    use std::future::Future;
    use std::sync::Arc;

    use prost::Message as _;
    use protoactor_persistence::{Provider, Record};

    use super::SubscriptionStore;
    use crate::proto::Subscribers;

    /// The protobuf full name the lists are stored under.
    const TYPE_NAME: &str = "cluster.Subscribers";

    /// Keeps each topic's subscribers in a `protoactor-persistence` [`Provider`] (SQLite,
    /// PostgreSQL, ...): the list is the provider's snapshot at index 0 of the persistence
    /// name `pubsub-topic/<topic>`, a `cluster.Subscribers` protobuf (Go's type), replaced
    /// on every change. The provider's own connection handling and durability apply: give
    /// every member a provider on the same database and a topic that moves (its host killed,
    /// the topology changed) comes back with every subscriber.
    ///
    /// The topic actor waits for each call (a subscription is saved before it is
    /// acknowledged), as a persistent actor waits for its journal: on a multi-thread tokio
    /// runtime (the actor system's), in `block_in_place`.
    #[derive(Clone)]
    pub struct ProviderStore {
        provider: Arc<dyn Provider>,
    }

    impl ProviderStore {
        /// A store on `provider`.
        pub fn new(provider: Arc<dyn Provider>) -> Self {
            ProviderStore { provider }
        }

        /// The persistence name a topic's list is stored under.
        pub fn key(topic: &str) -> String {
            format!("pubsub-topic/{topic}")
        }
    }

    /// Waits for a storage future from the (synchronous) topic actor.
    fn wait<F: Future>(fut: F) -> Result<F::Output, String> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                Ok(tokio::task::block_in_place(|| h.block_on(fut)))
            }
            Ok(_) => Err(
                "a subscription store cannot wait on a current-thread tokio runtime \
                          (it would stall it); run the actor system on a multi-thread runtime"
                    .into(),
            ),
            // Not on a runtime thread (a synchronized dispatcher): a runtime of its own.
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(fut))
                .map_err(|e| format!("cannot start a runtime for the store: {e}")),
        }
    }

    impl SubscriptionStore for ProviderStore {
        fn describe(&self) -> String {
            self.provider.describe()
        }

        fn get(&self, topic: &str) -> Result<Option<Subscribers>, String> {
            let Some(entry) =
                wait(self.provider.get_snapshot(&Self::key(topic)))?.map_err(|e| e.to_string())?
            else {
                return Ok(None);
            };
            if entry.record.type_name != TYPE_NAME {
                return Err(format!(
                    "the stored record is a {:?}, not a {TYPE_NAME}",
                    entry.record.type_name
                ));
            }
            Subscribers::decode(entry.record.payload.as_slice())
                .map(Some)
                .map_err(|e| format!("the stored {TYPE_NAME} cannot be decoded: {e}"))
        }

        fn set(&self, topic: &str, subscribers: &Subscribers) -> Result<(), String> {
            let record = Record {
                type_name: TYPE_NAME.to_string(),
                payload: subscribers.encode_to_vec(),
            };
            wait(self.provider.persist_snapshot(&Self::key(topic), 0, record))?
                .map_err(|e| e.to_string())
        }
    }
}
