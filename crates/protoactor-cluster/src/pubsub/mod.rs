//! Cluster pub/sub in protoactor-go's dialect (`cluster/pubsub*.go`), both roles: a member
//! hosts topics (kind [`TOPIC_KIND`], advertised like Go's so Go places topics on Rust
//! members too) and every node runs the delivery actor [`DELIVERY_NAME`]; publishers and
//! subscribers may be Go or Rust.
//!
//! Start it with the cluster: `ClusterConfig::with_service(PubSub::new(PubSubConfig::default()))`.
//! Then [`Cluster::publisher`] publishes, [`Cluster::batching_producer`] batches, and
//! [`Cluster::subscribe_pid`] / [`Cluster::subscribe_identity`] subscribe (from inside an actor
//! or a grain too: await them with `ctx.reenter_after`). A subscriber receives the published
//! messages themselves, in publish order per publisher; after the messages of each batch it
//! also receives the emptied [`protoactor::MessageBatch`] that carried them and a
//! [`protoactor::Touch`] (as a Go subscriber receives the `PubSubAutoRespondBatch`): match
//! the message types you handle and ignore the rest.
//!
//! **Message types.** Published messages cross the wire in Go's `PubSubBatchTransport` with
//! their proto full names: register each type on the remote's registry on every Rust node,
//! and only publish types that **every Go node that receives the batch has linked in** (the
//! topic's host and each subscriber's member): a Go node of the 2024 module exits on an
//! unknown type name.
//!
//! Better than Go (see docs/semantics.md): subscriber lists kept in a [`SubscriptionStore`]
//! survive a topic moving; a cluster-identity subscriber costs no activation round trip per
//! batch and one that cannot be found is a reported failure; one batch's deliveries run
//! together, each bounded by the subscriber timeout; [`Publisher::publish_acknowledged`]
//! completes when every subscriber has handled the message (or says which did not).

use std::sync::Arc;
use std::time::Duration;

use protoactor::{ActorSystem, BoxedMessage, ContextOps, Message, Pid, Props};
use protoactor_remote::{PidExt, Remote, Serialization};

pub mod batch;
mod delivery;
pub mod producer;
pub mod store;
mod topic;

pub use producer::{BatchingProducer, ProducerConfig};
#[cfg(feature = "persistence")]
#[cfg_attr(docsrs, doc(cfg(feature = "persistence")))]
pub use store::ProviderStore;
pub use store::{InMemoryStore, NoStore, StoreFailure, SubscriptionStore};

use crate::cluster::{CallOptions, Cluster};
use crate::config::ClusterService;
use crate::error::ClusterError;
use crate::kind::Kind;
use crate::proto::{
    self, subscriber_identity::Identity, Acknowledge, ClusterIdentity, DeliveryStatus, Initialize,
    PubSubBatchTransport, PublishResponse, PublishStatus, SubscribeRequest, SubscribeResponse,
    SubscriberIdentity, UnsubscribeRequest, UnsubscribeResponse,
};
use batch::EncodedMessage;

/// The kind of topic grains (Go's `TopicActorKind`).
pub const TOPIC_KIND: &str = "prototopic";
/// The name of the delivery actor on every node (Go's `PubSubDeliveryName`).
pub const DELIVERY_NAME: &str = "$pubsub-delivery";

/// Why a pub/sub operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PubSubError {
    /// The topic could not be reached (no member hosts `prototopic`, timeout, ...).
    #[error("pubsub: {0}")]
    Cluster(#[from] ClusterError),
    /// A message could not be encoded (its type is not registered on the remote).
    #[error("pubsub: cannot encode the message: {0}")]
    Encode(String),
    /// A message in a batch could not be decoded (unknown type name, bad bytes).
    #[error("pubsub: cannot decode a batch message: {0}")]
    Decode(String),
    /// A batch envelope names a type index outside the batch's type names.
    #[error("pubsub: batch envelope type index {0} is out of range")]
    BadTypeIndex(i32),
    /// A message is larger than the configured maximum.
    #[error("pubsub: message of {bytes} bytes exceeds the maximum of {max}")]
    MessageTooLarge {
        /// The encoded size.
        bytes: usize,
        /// The maximum.
        max: usize,
    },
    /// The topic answered `PublishStatus::Failed` (some subscribers could not be placed).
    #[error("pubsub: the topic reported a failed publish")]
    PublishFailed,
    /// The batching producer's queue is full.
    #[error("pubsub: the producer queue is full")]
    QueueFull,
    /// The batching producer is stopped.
    #[error("pubsub: the producer is stopped")]
    Stopped,
    /// An acknowledged publish: some subscribers did not handle the batch (the others did).
    #[error("pubsub: topic {topic:?}: {} subscriber(s) did not handle the batch: {}", .failed.len(), list(.failed))]
    Undelivered {
        /// The topic.
        topic: String,
        /// Who failed and why.
        failed: Vec<FailedDelivery>,
    },
    /// An acknowledged publish reached a topic whose host does not wait for its subscribers
    /// (a protoactor-go member): the batch was published, but nothing confirms delivery.
    #[error("pubsub: topic {topic:?} is hosted by a member that does not acknowledge deliveries (protoactor-go); the batch was published without acknowledgement")]
    NotAcknowledged {
        /// The topic.
        topic: String,
    },
}

fn list(failed: &[FailedDelivery]) -> String {
    let all: Vec<String> = failed.iter().map(ToString::to_string).collect();
    all.join("; ")
}

/// A subscriber that did not handle an acknowledged publish.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedDelivery {
    /// The subscriber (a PID or a cluster identity).
    pub subscriber: SubscriberIdentity,
    /// Go's status: `Timeout`, `SubscriberNoLongerReachable` or `OtherError`.
    pub status: DeliveryStatus,
    /// Why, in words.
    pub reason: String,
}

impl std::fmt::Display for FailedDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.subscriber.identity.as_ref() {
            Some(Identity::Pid(p)) => write!(f, "PID {}/{}", p.address, p.id)?,
            Some(Identity::ClusterIdentity(ci)) => write!(f, "{}/{}", ci.kind, ci.identity)?,
            None => write!(f, "(empty subscriber)")?,
        }
        write!(f, " ({:?}): {}", self.status, self.reason)
    }
}

/// Pub/sub settings.
#[derive(Clone)]
pub struct PubSubConfig {
    /// How long a subscriber may take to handle a batch (Go's `SubscriberTimeout`, 5 s).
    pub subscriber_timeout: Duration,
    /// Where topics keep their subscribers (default: nowhere, as Go).
    pub store: Arc<dyn SubscriptionStore>,
    /// Most deliveries awaiting an answer on this node at once (default 10 000).
    pub max_in_flight: usize,
    /// Largest encoded message a publisher sends (default 4 MiB, gRPC's default limit).
    pub max_message_bytes: usize,
}

impl Default for PubSubConfig {
    fn default() -> Self {
        PubSubConfig {
            subscriber_timeout: Duration::from_secs(5),
            store: Arc::new(NoStore),
            max_in_flight: 10_000,
            max_message_bytes: 4 * 1024 * 1024,
        }
    }
}

impl PubSubConfig {
    /// Keeps subscriber lists in `store`.
    pub fn with_store(mut self, store: impl SubscriptionStore) -> Self {
        self.store = Arc::new(store);
        self
    }
    /// Sets the subscriber timeout.
    pub fn with_subscriber_timeout(mut self, timeout: Duration) -> Self {
        self.subscriber_timeout = timeout;
        self
    }
}

/// The pub/sub [`ClusterService`]: hosts `prototopic` on members, runs `$pubsub-delivery`
/// everywhere and registers the `cluster.*` pub/sub messages.
#[derive(Clone, Default)]
pub struct PubSub {
    config: PubSubConfig,
}

impl PubSub {
    /// Pub/sub with `config`.
    pub fn new(config: PubSubConfig) -> Self {
        PubSub { config }
    }
}

/// Registers the pub/sub messages of the 2024 Go module on `serialization`.
pub fn register_pubsub_types(s: &Serialization) {
    s.register::<proto::SubscriberIdentity>();
    s.register::<proto::Initialize>();
    s.register::<proto::Acknowledge>();
    s.register::<proto::Subscribers>();
    s.register::<proto::SubscribeRequest>();
    s.register::<proto::SubscribeResponse>();
    s.register::<proto::UnsubscribeRequest>();
    s.register::<proto::UnsubscribeResponse>();
    s.register::<proto::PubSubBatchTransport>();
    s.register::<proto::PubSubEnvelope>();
    s.register::<proto::DeliverBatchRequestTransport>();
    s.register::<proto::NotifyAboutFailingSubscribersRequest>();
    s.register::<proto::NotifyAboutFailingSubscribersResponse>();
    s.register::<proto::SubscriberDeliveryReport>();
    s.register::<proto::PubSubAutoRespondBatchTransport>();
    s.register::<proto::PublishResponse>();
}

/// The pub/sub config of the cluster started on `system` (kept as a system extension).
struct PubSubState(PubSubConfig);

impl ClusterService for PubSub {
    fn kinds(&self) -> Vec<Kind> {
        let (store, timeout) = (self.config.store.clone(), self.config.subscriber_timeout);
        vec![Kind::new(
            TOPIC_KIND,
            Props::from_producer(move || topic::TopicActor::new(store.clone(), timeout)),
        )]
    }

    fn start(
        &self,
        system: &ActorSystem,
        remote: &Remote,
        _client: bool,
    ) -> Result<(), ClusterError> {
        register_pubsub_types(remote.serialization());
        system.set_extension(Arc::new(PubSubState(self.config.clone())));
        let (timeout, max) = (self.config.subscriber_timeout, self.config.max_in_flight);
        let props = Props::from_producer_with_system(move |system: &ActorSystem| {
            delivery::DeliveryActor::start(system, timeout, max)
        });
        system
            .root()
            .spawn_named(&props, DELIVERY_NAME)
            .map(drop)
            .map_err(|e| ClusterError::Spawn(e.to_string()))
    }
}

fn pubsub_config(cluster: &Cluster) -> PubSubConfig {
    cluster
        .system()
        .extension::<PubSubState>()
        .map(|s| s.0.clone())
        .unwrap_or_default()
}

/// The result of a subscribe or unsubscribe: `Ok` once the topic has the change.
pub type SubscriptionFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), PubSubError>> + Send + 'static>>;

/// Publishes to topics (Go's `Cluster.Publisher()`); cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    cluster: Cluster,
    max_message_bytes: usize,
    subscriber_timeout: Duration,
}

impl Publisher {
    /// Initializes `topic`; with a non-zero `idle_timeout` the topic stops after that long
    /// without messages (Go's `Initialize`).
    pub async fn initialize(&self, topic: &str, idle_timeout: Duration) -> Result<(), PubSubError> {
        let init = Initialize {
            idle_timeout: prost_types::Duration::try_from(idle_timeout).ok(),
        };
        self.cluster
            .request_as::<Acknowledge, _>(topic, TOPIC_KIND, init, &CallOptions::default())
            .await?;
        Ok(())
    }

    /// Publishes one message (a batch of one).
    pub async fn publish<M: Message>(&self, topic: &str, message: M) -> Result<(), PubSubError> {
        self.publish_batch(topic, vec![Box::new(message) as BoxedMessage])
            .await
    }

    /// Publishes `messages` as one batch; every subscriber receives them in this order.
    /// Completes when the topic has fanned the batch out (as Go), not when it is delivered.
    pub async fn publish_batch(
        &self,
        topic: &str,
        messages: Vec<BoxedMessage>,
    ) -> Result<(), PubSubError> {
        let encoded = self.encode_all(&messages)?;
        self.publish_encoded(topic, encoded, &CallOptions::default())
            .await
    }

    /// Publishes one message and waits until every subscriber has handled it
    /// (acknowledged mode, protoactor-rs topics only): `Ok` when all did, else
    /// [`PubSubError::Undelivered`] naming each subscriber that did not and why. Unlike
    /// [`Publisher::publish`] (Go's `PublishResponse`, which comes before any delivery),
    /// an `Ok` here means delivered and handled: retry on an error for at-least-once.
    pub async fn publish_acknowledged<M: Message>(
        &self,
        topic: &str,
        message: M,
    ) -> Result<(), PubSubError> {
        self.publish_batch_acknowledged(topic, vec![Box::new(message) as BoxedMessage])
            .await
    }

    /// [`Publisher::publish_acknowledged`] for a batch: completes when every subscriber has
    /// handled every message of it. Waits at most about twice the subscriber timeout plus
    /// a few seconds.
    pub async fn publish_batch_acknowledged(
        &self,
        topic: &str,
        messages: Vec<BoxedMessage>,
    ) -> Result<(), PubSubError> {
        let encoded = self.encode_all(&messages)?;
        let mut batch = batch::to_transport(encoded);
        batch.acknowledged = true;
        // The topic waits up to 2 subscriber timeouts + 1 s for the delivery actors.
        let opts = CallOptions::default()
            .with_timeout(self.subscriber_timeout * 2 + Duration::from_secs(5));
        let r: PublishResponse = self
            .cluster
            .request_as(topic, TOPIC_KIND, batch, &opts)
            .await?;
        if !r.acknowledged {
            return Err(PubSubError::NotAcknowledged {
                topic: topic.to_string(),
            });
        }
        if r.failed.is_empty() {
            return Ok(());
        }
        let failed = r
            .failed
            .into_iter()
            .map(|f| FailedDelivery {
                status: DeliveryStatus::try_from(f.status).unwrap_or(DeliveryStatus::OtherError),
                subscriber: f.subscriber.unwrap_or_default(),
                reason: f.reason,
            })
            .collect();
        Err(PubSubError::Undelivered {
            topic: topic.to_string(),
            failed,
        })
    }

    fn encode_all(&self, messages: &[BoxedMessage]) -> Result<Vec<EncodedMessage>, PubSubError> {
        messages.iter().map(|m| self.encode(m.as_ref())).collect()
    }

    pub(crate) fn encode(&self, m: &dyn Message) -> Result<EncodedMessage, PubSubError> {
        EncodedMessage::encode(
            self.cluster.remote().serialization(),
            self.cluster.address(),
            m,
            self.max_message_bytes,
        )
    }

    pub(crate) async fn publish_encoded(
        &self,
        topic: &str,
        messages: Vec<EncodedMessage>,
        opts: &CallOptions,
    ) -> Result<(), PubSubError> {
        let batch: PubSubBatchTransport = batch::to_transport(messages);
        let r: PublishResponse = self
            .cluster
            .request_as(topic, TOPIC_KIND, batch, opts)
            .await?;
        if r.status == PublishStatus::Failed as i32 {
            return Err(PubSubError::PublishFailed);
        }
        Ok(())
    }
}

/// A PID subscriber; a PID spawned before the remote started says "nonhost": it gets
/// `local_address`.
fn pid_subscriber(pid: &Pid, local_address: &str) -> SubscriberIdentity {
    let mut p = pid.to_proto();
    if p.address.is_empty() || p.address == "nonhost" {
        p.address = local_address.to_string();
    }
    SubscriberIdentity {
        identity: Some(Identity::Pid(p)),
    }
}

fn identity_subscriber(identity: &str, kind: &str) -> SubscriberIdentity {
    SubscriberIdentity {
        identity: Some(Identity::ClusterIdentity(ClusterIdentity::new(
            identity, kind,
        ))),
    }
}

impl Cluster {
    /// A publisher (Go's `Cluster.Publisher()`).
    pub fn publisher(&self) -> Publisher {
        let config = pubsub_config(self);
        Publisher {
            cluster: self.clone(),
            max_message_bytes: config.max_message_bytes,
            subscriber_timeout: config.subscriber_timeout,
        }
    }

    /// A batching producer for `topic` (Go's `Cluster.BatchingProducer`).
    pub fn batching_producer(&self, topic: &str, config: ProducerConfig) -> BatchingProducer {
        BatchingProducer::start(self.publisher(), topic, config)
    }

    /// Subscribes the actor `pid` to `topic` (Go's `SubscribeByPid`); it is removed when it
    /// dies or its member leaves.
    pub fn subscribe_pid(&self, topic: &str, pid: &Pid) -> SubscriptionFuture {
        self.subscription(topic, pid_subscriber(pid, self.address()), true)
    }

    /// Subscribes grain `identity` of `kind` to `topic` (Go's `SubscribeByClusterIdentity`).
    pub fn subscribe_identity(
        &self,
        topic: &str,
        identity: &str,
        kind: &str,
    ) -> SubscriptionFuture {
        self.subscription(topic, identity_subscriber(identity, kind), true)
    }

    /// Unsubscribes the actor `pid` from `topic` (Go's `UnsubscribeByPid`).
    pub fn unsubscribe_pid(&self, topic: &str, pid: &Pid) -> SubscriptionFuture {
        self.subscription(topic, pid_subscriber(pid, self.address()), false)
    }

    /// Unsubscribes grain `identity` of `kind` from `topic` (Go's
    /// `UnsubscribeByIdentityAndKind`).
    pub fn unsubscribe_identity(
        &self,
        topic: &str,
        identity: &str,
        kind: &str,
    ) -> SubscriptionFuture {
        self.subscription(topic, identity_subscriber(identity, kind), false)
    }

    fn subscription(
        &self,
        topic: &str,
        s: SubscriberIdentity,
        subscribe: bool,
    ) -> SubscriptionFuture {
        let (c, topic, opts) = (self.clone(), topic.to_string(), CallOptions::default());
        Box::pin(async move {
            let subscriber = Some(s);
            if subscribe {
                let req = SubscribeRequest { subscriber };
                c.request_as::<SubscribeResponse, _>(topic, TOPIC_KIND, req, &opts)
                    .await?;
            } else {
                let req = UnsubscribeRequest { subscriber };
                c.request_as::<UnsubscribeResponse, _>(topic, TOPIC_KIND, req, &opts)
                    .await?;
            }
            Ok(())
        })
    }
}
