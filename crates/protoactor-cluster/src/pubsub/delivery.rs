//! The delivery actor `$pubsub-delivery` (Go's `cluster/pubsub_delivery.go`), on members and
//! clients: it hands a batch to the subscribers on this node and reports the failures to the
//! topic. Unlike Go: the subscribers get the messages themselves (sent as one
//! `MessageBatch` of messages decoded once and shared by the node's subscribers, which the
//! mailbox unrolls; the emptied batch and a `Touch` follow them,
//! and the `Touched` answer confirms they were handled); a cluster-identity subscriber is found
//! through the PID cache and one that cannot be found is a reported failure, not a crash;
//! the waits of one batch run together and never hold up the next batch; the local
//! subscribers' answers to one batch are gathered by one process ([`Answers`]), not a future
//! each. A request with
//! `acknowledge` set (an acknowledged publish, protoactor-rs only) is answered with the
//! failures once every subscriber handled the batch or failed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use protoactor::runtime::{Process, SystemMessage};
use protoactor::{
    Actor, ActorFuture, ActorSystem, BoxedMessage, Context, ContextOps, DeadLetterResponse,
    FutureError, MessageBatch, MessageEnvelope, Pid, RootContext, SharedBatches, SharedMessage,
    Touch, Touched,
};
use tokio::sync::{mpsc, Notify, Semaphore};

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
    let max_in_flight = max_in_flight.max(1);
    let permits = Arc::new(Semaphore::new(max_in_flight));
    while let Some((req, ack_to)) = rx.recv().await {
        let Some(cluster) = Cluster::from_system(&system) else {
            continue;
        };
        let subscribers = req.subscribers.map(|s| s.subscribers).unwrap_or_default();
        let batch = req.batch.unwrap_or_default();
        // The batch's deliveries count against `max_in_flight` together (at most all of it:
        // a batch with more subscribers than that still goes, alone).
        let want = subscribers.len().clamp(1, max_in_flight) as u32;
        let Ok(permit) = permits.clone().acquire_many_owned(want).await else {
            return;
        };
        let mut failed = Vec::new();
        let serialization = cluster.remote().serialization().clone();
        let mut local = LocalBatch {
            prepared: batch::Prepared::new(&serialization, &batch.type_names, &batch.envelopes),
            decoded: None,
            receivers: subscribers.len(),
        };
        let answers = Answers::start(cluster.system(), subscribers.len());
        let mut remote = Vec::new();
        let last = subscribers.len().saturating_sub(1);
        for (i, s) in subscribers.iter().enumerate() {
            let to = Target {
                subscriber: s,
                index: i,
                last: i == last,
            };
            match deliver(
                &cluster, &req.topic, &batch, &mut local, &answers, to, timeout,
            )
            .await
            {
                Ok(Sent::Local) => {}
                Ok(Sent::Remote(fut)) => remote.push((i, fut)),
                Err((status, reason)) => {
                    tracing::warn!(topic = %req.topic, subscriber = ?s, ?status, %reason, "pubsub: cannot deliver to a subscriber");
                    failed.push(report(s.clone(), status, reason));
                }
            }
        }
        let topic = req.topic;
        system.runtime().spawn(async move {
            let _permit = permit;
            let mut outcomes = answers.wait(timeout).await;
            for (i, fut) in remote {
                outcomes.push((i, fut.await.err()));
            }
            for (i, error) in outcomes {
                let (status, reason) = match error {
                    None => continue,
                    Some(FutureError::Timeout { .. }) => (
                        DeliveryStatus::Timeout,
                        format!("no answer within the subscriber timeout of {timeout:?}"),
                    ),
                    Some(FutureError::DeadLetter { .. }) => (
                        DeliveryStatus::SubscriberNoLongerReachable,
                        "the subscriber is gone (dead letter)".to_string(),
                    ),
                    Some(e) => (DeliveryStatus::OtherError, e.to_string()),
                };
                let s = &subscribers[i];
                tracing::warn!(topic = %topic, subscriber = ?s, ?status, %reason, "pubsub: a subscriber did not process a batch");
                failed.push(report(s.clone(), status, reason));
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

/// The answers of one batch's local subscribers: each is sent a `Touch` after the batch with
/// this process as the sender, and its `Touched` (or the dead letter's answer) lands here. One
/// registered process per batch, where an `ActorFuture` per subscriber cost a registry entry,
/// its allocations and a timer for each subscriber of each batch (about a tenth of the
/// subscribers' member's time with batches of ~150 messages, perf).
struct Answers {
    pid: Pid,
    gather: Arc<Gather>,
    system: ActorSystem,
}

struct Gather {
    state: Mutex<GatherState>,
    done: Notify,
}

struct GatherState {
    /// The local subscribers not answered yet, by PID (a PID subscribed twice: its indices).
    waiting: HashMap<Pid, Vec<usize>>,
    /// Those whose `Touch` went to dead letters.
    gone: Vec<usize>,
    /// Set once the answers are read: a late answer changes nothing.
    closed: bool,
}

impl Answers {
    fn start(system: &ActorSystem, subscribers: usize) -> Self {
        let gather = Arc::new(Gather {
            state: Mutex::new(GatherState {
                waiting: HashMap::with_capacity(subscribers),
                gone: Vec::new(),
                closed: false,
            }),
            done: Notify::new(),
        });
        let id = system.registry().next_id();
        let pid = system
            .registry()
            .add(
                Arc::new(GatherProcess(gather.clone())),
                &format!("pubsub-answers-{id}"),
            )
            .expect("generated ids are unique");
        Answers {
            pid,
            gather,
            system: system.clone(),
        }
    }

    /// Expects an answer from the subscriber at `index`, reached at `pid`.
    fn expect(&self, pid: &Pid, index: usize) {
        let mut st = self.gather.state.lock();
        st.waiting.entry(pid.clone()).or_default().push(index);
    }

    /// Waits (at most `timeout`) until every expected subscriber answered; the outcome of
    /// each that did not answer well: gone (dead letter) or timed out.
    async fn wait(self, timeout: Duration) -> Vec<(usize, Option<FutureError>)> {
        let all_in = async {
            loop {
                let notified = self.gather.done.notified();
                if self.gather.state.lock().waiting.is_empty() {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(timeout, all_in).await;
        self.system.registry().remove(&self.pid);
        let mut st = self.gather.state.lock();
        st.closed = true;
        let info = |target: Option<Pid>| protoactor::future::RequestInfo {
            target,
            message_type: std::any::type_name::<Touch>(),
            timeout: Some(timeout),
            future: self.pid.clone(),
        };
        let mut out: Vec<(usize, Option<FutureError>)> = st
            .gone
            .drain(..)
            .map(|i| {
                (
                    i,
                    Some(FutureError::DeadLetter {
                        request: info(None),
                    }),
                )
            })
            .collect();
        for (pid, indices) in st.waiting.drain() {
            for i in indices {
                let request = info(Some(pid.clone()));
                out.push((i, Some(FutureError::Timeout { request })));
            }
        }
        out
    }
}

struct GatherProcess(Arc<Gather>);

impl Process for GatherProcess {
    fn send_user_message(&self, _pid: &Pid, envelope: MessageEnvelope) {
        let m = envelope.message();
        let (who, gone) = if let Some(t) = m.downcast_ref::<Touched>() {
            (&t.who, false)
        } else if let Some(Some(target)) = m.downcast_ref::<DeadLetterResponse>().map(|d| &d.target)
        {
            (target, true)
        } else {
            return;
        };
        let mut st = self.0.state.lock();
        if st.closed {
            return;
        }
        let Some(indices) = st.waiting.get_mut(who) else {
            return;
        };
        let i = indices.pop();
        if indices.is_empty() {
            st.waiting.remove(who);
        }
        if let (true, Some(i)) = (gone, i) {
            st.gone.push(i);
        }
        if st.waiting.is_empty() {
            self.0.done.notify_one();
        }
    }
    fn send_system_message(&self, _pid: &Pid, _message: SystemMessage) {}
    fn diagnostics(&self) -> String {
        format!(
            "pubsub delivery: {} subscribers not answered yet",
            self.0.state.lock().waiting.len()
        )
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
    /// How many subscribers the batch may go to (the references of shared messages are
    /// taken for all of them at once: `MessageBatch::shared_for`).
    receivers: usize,
}

enum Decoded {
    /// The messages, and a batch of them for each subscriber.
    Shared(Arc<[SharedMessage]>, SharedBatches),
    /// Taken by the last subscriber.
    Owned(Vec<BoxedMessage>),
}

/// A subscriber of the batch, its place in the batch's list, and whether it is the last.
struct Target<'a> {
    subscriber: &'a SubscriberIdentity,
    index: usize,
    last: bool,
}

/// Where a batch went: to a local subscriber (its answer goes to the batch's [`Answers`]) or
/// to a remote one (its answer to the future).
enum Sent {
    Local,
    Remote(ActorFuture),
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
                match prepared.share_all(all) {
                    Ok(all) => {
                        Decoded::Shared(all.clone(), MessageBatch::shared_for(all, self.receivers))
                    }
                    Err(all) => Decoded::Owned(all),
                }
            })
        });
        let batch = match decoded {
            Err(e) => return Err(e.clone()),
            Ok(Decoded::Shared(all, batches)) => batches
                .next()
                .unwrap_or_else(|| MessageBatch::shared(all.clone())),
            Ok(Decoded::Owned(d)) if last => MessageBatch::new(std::mem::take(d)),
            Ok(Decoded::Owned(d)) => MessageBatch::new(prepared.copy_all(d)?),
        };
        root.send(pid, batch);
        Ok(())
    }
}

/// Sends the batch to one subscriber; a remote one's answer comes to the returned future.
async fn deliver(
    cluster: &Cluster,
    topic: &str,
    batch: &crate::proto::PubSubBatchTransport,
    local: &mut LocalBatch<'_>,
    answers: &Answers,
    to: Target<'_>,
    timeout: Duration,
) -> Result<Sent, (DeliveryStatus, String)> {
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
    if pid.address() != cluster.address() && !pid.address().is_empty() {
        // Not on this node (an activation that moved): the Go form, which a Go subscriber
        // unrolls and answers.
        let fut = ActorFuture::new(system, timeout);
        let wire = PubSubAutoRespondBatchTransport {
            type_names: batch.type_names.clone(),
            envelopes: batch.envelopes.clone(),
        };
        root.send_envelope(
            &pid,
            MessageEnvelope::new(wire).with_sender(Some(fut.pid().clone())),
        );
        return Ok(Sent::Remote(fut));
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
    answers.expect(&pid, to.index);
    root.send_envelope(
        &pid,
        MessageEnvelope::new(Touch).with_sender(Some(answers.pid.clone())),
    );
    Ok(Sent::Local)
}
