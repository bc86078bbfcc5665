//! The delivery actor `$pubsub-delivery` (Go's `cluster/pubsub_delivery.go`), on members and
//! clients: it hands a batch to the subscribers on this node and reports the failures to the
//! topic. Unlike Go: the subscribers get the messages themselves (sent as one
//! `MessageBatch` of messages decoded once and shared by the node's subscribers, which the
//! mailbox unrolls; the emptied batch and a `Touch` follow them,
//! and the `Touched` answer confirms they were handled); a cluster-identity subscriber is found
//! through the PID cache and one that cannot be found is a reported failure, not a crash;
//! the waits of one batch run together and never hold up the next batch. A request with
//! `acknowledge` set (an acknowledged publish, protoactor-rs only) is answered with the
//! failures once every subscriber handled the batch or failed.

use std::sync::Arc;
use std::time::Duration;

use protoactor::{
    Actor, ActorFuture, ActorSystem, BoxedMessage, Context, ContextOps, FutureError, MessageBatch,
    MessageEnvelope, Pid, RootContext, SharedMessage, Touch,
};
use tokio::sync::{mpsc, Semaphore};

use super::batch;
use super::{PubSubError, TOPIC_KIND};
use crate::cluster::{CallOptions, Cluster};
use crate::proto::{
    subscriber_identity::Identity, DeliverBatchRequestTransport, DeliveryStatus,
    NotifyAboutFailingSubscribersRequest, PubSubAutoRespondBatchTransport,
    SubscriberDeliveryReport, SubscriberIdentity,
};

/// The actor: it queues each request for one task, which keeps the batches in order.
pub(crate) struct DeliveryActor {
    queue: mpsc::UnboundedSender<(DeliverBatchRequestTransport, Option<Pid>)>,
}

impl DeliveryActor {
    pub(crate) fn start(system: &ActorSystem, timeout: Duration, max_in_flight: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        system
            .runtime()
            .spawn(run(system.clone(), rx, timeout, max_in_flight));
        DeliveryActor { queue: tx }
    }
}

impl Actor for DeliveryActor {
    fn receive(&mut self, ctx: &mut Context) {
        if let Some(req) = ctx.take_message::<DeliverBatchRequestTransport>() {
            let ack_to = req.acknowledge.then(|| ctx.sender().cloned()).flatten();
            let _ = self.queue.send((req, ack_to));
        }
    }
}

/// Delivers the batches one after another (so every subscriber sees them in order); the
/// answers of a batch are awaited in a task of their own, at most `max_in_flight` deliveries
/// outstanding at once (beyond that, the next batch waits: back pressure).
async fn run(
    system: ActorSystem,
    mut rx: mpsc::UnboundedReceiver<(DeliverBatchRequestTransport, Option<Pid>)>,
    timeout: Duration,
    max_in_flight: usize,
) {
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    while let Some((req, ack_to)) = rx.recv().await {
        let Some(cluster) = Cluster::from_system(&system) else {
            continue;
        };
        let subscribers = req.subscribers.map(|s| s.subscribers).unwrap_or_default();
        let batch = req.batch.unwrap_or_default();
        let mut pending = Vec::with_capacity(subscribers.len());
        let mut failed = Vec::new();
        let serialization = cluster.remote().serialization().clone();
        let mut local = LocalBatch {
            prepared: batch::Prepared::new(&serialization, &batch.type_names, &batch.envelopes),
            decoded: None,
        };
        let last = subscribers.len().saturating_sub(1);
        for (i, s) in subscribers.into_iter().enumerate() {
            let Ok(permit) = permits.clone().acquire_many_owned(1).await else {
                return;
            };
            let to = Target {
                subscriber: &s,
                last: i == last,
            };
            match deliver(&cluster, &req.topic, &batch, &mut local, to, timeout).await {
                Ok(fut) => pending.push((s, fut, permit)),
                Err((status, reason)) => {
                    tracing::warn!(topic = %req.topic, subscriber = ?s, ?status, %reason, "pubsub: cannot deliver to a subscriber");
                    failed.push(report(s, status, reason));
                }
            }
        }
        let topic = req.topic;
        system.runtime().spawn(async move {
            for (s, fut, _permit) in pending {
                let (status, reason) = match fut.await {
                    Ok(_) => continue,
                    Err(FutureError::Timeout { .. }) => (
                        DeliveryStatus::Timeout,
                        format!("no answer within the subscriber timeout of {timeout:?}"),
                    ),
                    Err(FutureError::DeadLetter { .. }) => (
                        DeliveryStatus::SubscriberNoLongerReachable,
                        "the subscriber is gone (dead letter)".to_string(),
                    ),
                    Err(e) => (DeliveryStatus::OtherError, e.to_string()),
                };
                tracing::warn!(topic = %topic, subscriber = ?s, ?status, %reason, "pubsub: a subscriber did not process a batch");
                failed.push(report(s, status, reason));
            }
            if let Some(to) = ack_to {
                // The topic of an acknowledged publish handles the failures itself.
                let answer = NotifyAboutFailingSubscribersRequest {
                    invalid_deliveries: failed,
                };
                cluster.system().root().send(&to, answer);
            } else if !failed.is_empty() {
                let notify = NotifyAboutFailingSubscribersRequest {
                    invalid_deliveries: failed,
                };
                if let Err(e) = cluster
                    .request(topic.clone(), TOPIC_KIND, notify, &CallOptions::default())
                    .await
                {
                    tracing::warn!(topic = %topic, error = %e, "pubsub: cannot report failed deliveries to the topic");
                }
            }
        });
    }
}

pub(crate) fn report(
    s: SubscriberIdentity,
    status: DeliveryStatus,
    reason: String,
) -> SubscriberDeliveryReport {
    SubscriberDeliveryReport {
        subscriber: Some(s),
        status: status as i32,
        reason,
    }
}

/// One batch for the subscribers on this node: the batch's types are looked up once and the
/// batch decoded whole once (so a batch that does not decode reaches no subscriber). The
/// subscribers share the decoded messages (a reference each, as Go hands every subscriber
/// the same pointer); a batch with a type that cannot be shared (a JSON type) is copied for
/// each subscriber instead, the last one getting the decoded messages themselves.
struct LocalBatch<'a> {
    prepared: Result<batch::Prepared<'a>, PubSubError>,
    /// The decoded batch, once a first subscriber needed it.
    decoded: Option<Result<Decoded, PubSubError>>,
}

enum Decoded {
    Shared(Arc<[SharedMessage]>),
    /// Taken by the last subscriber.
    Owned(Vec<BoxedMessage>),
}

/// A subscriber of the batch, and whether it is the batch's last.
struct Target<'a> {
    subscriber: &'a SubscriberIdentity,
    last: bool,
}

impl LocalBatch<'_> {
    /// Sends every message of the batch to `pid`, in order, as one [`MessageBatch`]: the
    /// mailbox queues them all and schedules the subscriber once, instead of a PID lookup
    /// and a schedule per message.
    fn send_to(&mut self, root: &RootContext, pid: &Pid, last: bool) -> Result<(), PubSubError> {
        let prepared = self.prepared.as_ref().map_err(Clone::clone)?;
        let decoded = self.decoded.get_or_insert_with(|| {
            let all = prepared.decode_all()?;
            // A lone subscriber owns the messages: sharing would cost a cell each for nothing.
            Ok(if last {
                Decoded::Owned(all)
            } else {
                prepared
                    .share_all(all)
                    .map_or_else(Decoded::Owned, Decoded::Shared)
            })
        });
        let batch = match decoded {
            Err(e) => return Err(e.clone()),
            Ok(Decoded::Shared(all)) => MessageBatch::shared(all.clone()),
            Ok(Decoded::Owned(d)) if last => MessageBatch::new(std::mem::take(d)),
            Ok(Decoded::Owned(d)) => MessageBatch::new(prepared.copy_all(d)?),
        };
        root.send(pid, batch);
        Ok(())
    }
}

/// Sends the batch to one subscriber and returns the future of its answer.
async fn deliver(
    cluster: &Cluster,
    topic: &str,
    batch: &crate::proto::PubSubBatchTransport,
    local: &mut LocalBatch<'_>,
    to: Target<'_>,
    timeout: Duration,
) -> Result<ActorFuture, (DeliveryStatus, String)> {
    let s = to.subscriber;
    let pid = match s.identity.as_ref() {
        Some(Identity::Pid(p)) => p.to_pid(),
        Some(Identity::ClusterIdentity(ci)) => {
            match tokio::time::timeout(timeout, cluster.get(ci)).await {
                Ok(Ok(pid)) => pid,
                Ok(Err(e)) => {
                    let why = format!("cannot activate {}/{}: {e}", ci.kind, ci.identity);
                    return Err((DeliveryStatus::OtherError, why));
                }
                Err(_) => {
                    let why = format!(
                        "no activation of {}/{} within {timeout:?}",
                        ci.kind, ci.identity
                    );
                    return Err((DeliveryStatus::Timeout, why));
                }
            }
        }
        None => return Err((DeliveryStatus::OtherError, "an empty subscriber".into())),
    };
    let system = cluster.system();
    let root = system.root();
    let fut = ActorFuture::new(system, timeout);
    if pid.address() != cluster.address() && !pid.address().is_empty() {
        // Not on this node (an activation that moved): the Go form, which a Go subscriber
        // unrolls and answers.
        let wire = PubSubAutoRespondBatchTransport {
            type_names: batch.type_names.clone(),
            envelopes: batch.envelopes.clone(),
        };
        root.send_envelope(
            &pid,
            MessageEnvelope::new(wire).with_sender(Some(fut.pid().clone())),
        );
        return Ok(fut);
    }
    local.send_to(&root, &pid, to.last).map_err(|e| {
        tracing::error!(topic, error = %e, "pubsub: a batch cannot be decoded; it goes to dead letters");
        // The dead letter names the topic and the subscriber.
        let undeliverable = DeliverBatchRequestTransport {
            subscribers: Some(crate::proto::Subscribers {
                subscribers: vec![s.clone()],
            }),
            batch: Some(batch.clone()),
            topic: topic.to_string(),
            acknowledge: false,
        };
        root.send(&system.dead_letter(), undeliverable);
        (DeliveryStatus::OtherError, e.to_string())
    })?;
    // Answered once the subscriber handled the messages before it (mailbox order).
    root.send_envelope(
        &pid,
        MessageEnvelope::new(Touch).with_sender(Some(fut.pid().clone())),
    );
    Ok(fut)
}
