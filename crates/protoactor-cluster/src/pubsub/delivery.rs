//! The delivery actor `$pubsub-delivery` (Go's `cluster/pubsub_delivery.go`), on members and
//! clients: it hands a batch to the subscribers on this node and reports the failures to the
//! topic. Unlike Go: the subscribers get the messages themselves (then a `Touch`, whose
//! `Touched` answer confirms they handled them); a cluster-identity subscriber is found
//! through the PID cache and one that cannot be found is a reported failure, not a crash;
//! the waits of one batch run together and never hold up the next batch.

use std::sync::Arc;
use std::time::Duration;

use protoactor::{
    Actor, ActorFuture, ActorSystem, Context, ContextOps, FutureError, MessageEnvelope, Touch,
};
use tokio::sync::{mpsc, Semaphore};

use super::batch;
use super::TOPIC_KIND;
use crate::cluster::{CallOptions, Cluster};
use crate::proto::{
    subscriber_identity::Identity, DeliverBatchRequestTransport, DeliveryStatus,
    NotifyAboutFailingSubscribersRequest, PubSubAutoRespondBatchTransport,
    SubscriberDeliveryReport, SubscriberIdentity,
};

/// The actor: it queues each request for one task, which keeps the batches in order.
pub(crate) struct DeliveryActor {
    queue: mpsc::UnboundedSender<DeliverBatchRequestTransport>,
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
            let _ = self.queue.send(req);
        }
    }
}

/// Delivers the batches one after another (so every subscriber sees them in order); the
/// answers of a batch are awaited in a task of their own, at most `max_in_flight` deliveries
/// outstanding at once (beyond that, the next batch waits: back pressure).
async fn run(
    system: ActorSystem,
    mut rx: mpsc::UnboundedReceiver<DeliverBatchRequestTransport>,
    timeout: Duration,
    max_in_flight: usize,
) {
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    while let Some(req) = rx.recv().await {
        let Some(cluster) = Cluster::from_system(&system) else {
            continue;
        };
        let subscribers = req.subscribers.map(|s| s.subscribers).unwrap_or_default();
        let batch = req.batch.unwrap_or_default();
        let mut pending = Vec::with_capacity(subscribers.len());
        let mut failed = Vec::new();
        for s in subscribers {
            let Ok(permit) = permits.clone().acquire_many_owned(1).await else {
                return;
            };
            match deliver(&cluster, &batch, &s, timeout).await {
                Ok(fut) => pending.push((s, fut, permit)),
                Err(status) => {
                    tracing::warn!(topic = %req.topic, subscriber = ?s, ?status, "pubsub: cannot deliver to a subscriber");
                    failed.push(report(s, status));
                }
            }
        }
        let topic = req.topic;
        system.runtime().spawn(async move {
            for (s, fut, _permit) in pending {
                let status = match fut.await {
                    Ok(_) => continue,
                    Err(FutureError::Timeout) => DeliveryStatus::Timeout,
                    Err(FutureError::DeadLetter) => DeliveryStatus::SubscriberNoLongerReachable,
                    Err(_) => DeliveryStatus::OtherError,
                };
                tracing::warn!(topic = %topic, subscriber = ?s, ?status, "pubsub: a subscriber did not process a batch");
                failed.push(report(s, status));
            }
            if !failed.is_empty() {
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

fn report(s: SubscriberIdentity, status: DeliveryStatus) -> SubscriberDeliveryReport {
    SubscriberDeliveryReport {
        subscriber: Some(s),
        status: status as i32,
    }
}

/// Sends the batch to one subscriber and returns the future of its answer.
async fn deliver(
    cluster: &Cluster,
    batch: &crate::proto::PubSubBatchTransport,
    s: &SubscriberIdentity,
    timeout: Duration,
) -> Result<ActorFuture, DeliveryStatus> {
    let pid = match s.identity.as_ref() {
        Some(Identity::Pid(p)) => p.to_pid(),
        Some(Identity::ClusterIdentity(ci)) => {
            match tokio::time::timeout(timeout, cluster.get(ci)).await {
                Ok(Ok(pid)) => pid,
                Ok(Err(_)) | Err(_) => return Err(DeliveryStatus::OtherError),
            }
        }
        None => return Err(DeliveryStatus::OtherError),
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
    let messages = batch::decode(
        cluster.remote().serialization(),
        &batch.type_names,
        &batch.envelopes,
    )
    .map_err(|e| {
        tracing::error!(error = %e, "pubsub: a batch cannot be decoded; it goes to dead letters");
        root.send(&system.dead_letter(), batch.clone());
        DeliveryStatus::OtherError
    })?;
    for m in messages {
        root.send_envelope(&pid, MessageEnvelope::from_boxed(m));
    }
    // Answered once the subscriber handled the messages before it (mailbox order).
    root.send_envelope(
        &pid,
        MessageEnvelope::new(Touch).with_sender(Some(fut.pid().clone())),
    );
    Ok(fut)
}
