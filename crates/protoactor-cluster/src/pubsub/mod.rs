//! Cluster pub/sub in protoactor-go's dialect (`cluster/pubsub*.go`), both roles: a member
//! hosts topics (kind [`TOPIC_KIND`], advertised like Go's so Go places topics on Rust
//! members too) and every node runs the delivery actor [`DELIVERY_NAME`]; publishers and
//! subscribers may be Go or Rust.
//!
//! Start it with the cluster: `ClusterConfig::with_service(PubSub::new(PubSubConfig::default()))`.
//! Then [`Cluster::publisher`] publishes, [`Cluster::batching_producer`] batches, and
//! [`Cluster::subscribe_pid`] / [`Cluster::subscribe_identity`] subscribe (from inside an actor
//! or a grain too: await them with `ctx.reenter_after`). A subscriber receives the published
//! messages themselves, in publish order per publisher.
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
//! together, each bounded by the subscriber timeout.

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
pub use store::{InMemoryStore, NoStore, SubscriptionStore};

use crate::cluster::{CallOptions, Cluster};
use crate::config::ClusterService;
use crate::error::ClusterError;
use crate::kind::Kind;
use crate::proto::{
    self, subscriber_identity::Identity, Acknowledge, ClusterIdentity, Initialize,
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
        let store = self.config.store.clone();
        vec![Kind::new(
            TOPIC_KIND,
            Props::from_producer(move || topic::TopicActor::new(store.clone())),
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
        let encoded = messages
            .iter()
            .map(|m| self.encode(m.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        self.publish_encoded(topic, encoded, &CallOptions::default())
            .await
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
        Publisher {
            cluster: self.clone(),
            max_message_bytes: pubsub_config(self).max_message_bytes,
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
