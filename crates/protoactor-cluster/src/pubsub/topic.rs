//! The topic actor (kind `prototopic`), as protoactor-go's `cluster/pubsub_topic.go`: it keeps
//! the subscribers, fans each published batch out to the `$pubsub-delivery` actor of every
//! member with subscribers, and drops PID subscribers that are gone. Unlike Go it loads and
//! saves the subscribers in a [`SubscriptionStore`], and it places a cluster-identity
//! subscriber by its cached PID or its owner without an activation round trip per batch.
//! An acknowledged publish (protoactor-rs only) is answered once every member's delivery
//! actor reported its subscribers' outcome.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use protoactor::{
    Actor, ActorFuture, ActorSystem, Context, ContextOps, MessageEnvelope, Pid, ReceiveTimeout,
    Started, Stopping, Subscription,
};

use super::store::{StoreFailure, SubscriptionStore};
use super::DELIVERY_NAME;
use crate::cluster::Cluster;
use crate::grain::GrainContext;
use crate::proto::{
    subscriber_identity::Identity, Acknowledge, ClusterTopology, DeliverBatchRequestTransport,
    DeliveryStatus, Initialize, NotifyAboutFailingSubscribersRequest,
    NotifyAboutFailingSubscribersResponse, PubSubBatchTransport, PublishResponse, PublishStatus,
    SubscribeRequest, SubscribeResponse, SubscriberDeliveryReport, SubscriberIdentity, Subscribers,
    UnsubscribeRequest, UnsubscribeResponse,
};

/// A subscriber as a map key: Go keys by PID `(address, id, request_id)` or by
/// `(identity, kind)`, so subscribing twice is idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum SubscriberKey {
    Pid(String, String, u32),
    Identity(String, String),
}

impl SubscriberKey {
    pub(crate) fn of(s: &SubscriberIdentity) -> Option<Self> {
        match s.identity.as_ref()? {
            Identity::Pid(p) => Some(Self::Pid(p.address.clone(), p.id.clone(), p.request_id)),
            Identity::ClusterIdentity(ci) => {
                Some(Self::Identity(ci.identity.clone(), ci.kind.clone()))
            }
        }
    }
}

pub(crate) struct TopicActor {
    topic: String,
    subscribers: BTreeMap<SubscriberKey, SubscriberIdentity>,
    store: Arc<dyn SubscriptionStore>,
    topology: Option<Subscription>,
    subscriber_timeout: Duration,
}

/// The failures of an acknowledged publish, from the topic's own waiting task to the topic
/// (which drops the PID subscribers that are gone, as for a delivery actor's report).
struct AcknowledgedFailures(Vec<SubscriberDeliveryReport>);

impl TopicActor {
    pub(crate) fn new(store: Arc<dyn SubscriptionStore>, subscriber_timeout: Duration) -> Self {
        TopicActor {
            topic: String::new(),
            subscribers: BTreeMap::new(),
            store,
            topology: None,
            subscriber_timeout,
        }
    }

    /// How long an acknowledged publish waits for a member's delivery actor: an identity
    /// subscriber may take one subscriber timeout to activate and one to answer.
    fn acknowledge_wait(&self) -> Duration {
        self.subscriber_timeout * 2 + Duration::from_secs(1)
    }

    fn started(&mut self, ctx: &mut Context) {
        self.topic = ctx
            .cluster_identity()
            .map(|c| c.identity)
            .unwrap_or_default();
        let (system, me) = (ctx.system().clone(), ctx.self_pid().clone());
        self.topology = Some(
            ctx.system()
                .event_stream()
                .subscribe_to::<ClusterTopology, _>(move |t| system.root().send(&me, t.clone())),
        );
        match self.store.get(&self.topic) {
            Ok(Some(saved)) => {
                for s in saved.subscribers {
                    if let Some(k) = SubscriberKey::of(&s) {
                        self.subscribers.insert(k, s);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => self.store_failed(ctx.system(), "load", e),
        }
        // PID subscribers on members that are gone while the topic was elsewhere.
        if let Some(c) = Cluster::from_system(ctx.system()) {
            let topology = c.member_list().topology();
            let alive: Vec<String> = topology.members().map(|m| m.address()).collect();
            self.remove(
                ctx.system(),
                |k| matches!(k, SubscriberKey::Pid(a, _, _) if !alive.contains(a)),
            );
        }
        tracing::debug!(topic = %self.topic, subscribers = self.subscribers.len(), "pubsub: topic started");
    }

    fn save(&self, system: &ActorSystem) {
        let list = Subscribers {
            subscribers: self.subscribers.values().cloned().collect(),
        };
        if let Err(e) = self.store.set(&self.topic, &list) {
            self.store_failed(system, "save", e);
        }
    }

    /// Reports a store error (the topic keeps its subscribers in memory).
    fn store_failed(&self, system: &ActorSystem, operation: &'static str, error: String) {
        let failure = StoreFailure {
            topic: self.topic.clone(),
            operation,
            store: self.store.describe(),
            error,
        };
        tracing::error!(topic = %self.topic, "{failure}; the topic keeps serving from memory");
        system.event_stream().publish(&failure);
    }

    fn remove(&mut self, system: &ActorSystem, gone: impl Fn(&SubscriberKey) -> bool) {
        let before = self.subscribers.len();
        self.subscribers.retain(|k, _| !gone(k));
        let removed = before - self.subscribers.len();
        if removed > 0 {
            tracing::warn!(topic = %self.topic, removed, "pubsub: removed subscribers that are dead or on members that left");
            self.save(system);
        }
    }

    /// Groups the subscribers by the address of their delivery actor. A cluster-identity
    /// subscriber goes to the member of its cached PID, else to its owner (where it is, or
    /// will be, activated); one with no owner is returned apart (unplaced).
    fn place(
        &self,
        ctx: &Context,
    ) -> (
        HashMap<String, Vec<SubscriberIdentity>>,
        Vec<SubscriberIdentity>,
    ) {
        let cluster = Cluster::from_system(ctx.system());
        let mut by_address: HashMap<String, Vec<SubscriberIdentity>> = HashMap::new();
        let mut unplaced = Vec::new();
        let topology = cluster.as_ref().map(|c| c.member_list().topology());
        for s in self.subscribers.values() {
            let address = match s.identity.as_ref() {
                Some(Identity::Pid(p)) => Some(p.address.clone()),
                Some(Identity::ClusterIdentity(ci)) => cluster.as_ref().and_then(|c| {
                    c.pid_cache()
                        .get(ci)
                        .map(|p| p.address().to_string())
                        .or_else(|| {
                            topology
                                .as_ref()
                                .and_then(|t| t.owner(&ci.kind, &ci.identity))
                                .map(str::to_string)
                        })
                }),
                None => None,
            };
            match address {
                Some(a) => by_address.entry(a).or_default().push(s.clone()),
                None => unplaced.push(s.clone()),
            }
        }
        (by_address, unplaced)
    }

    /// The batch of the subscribers no member can host goes to dead letters, topic named.
    fn dead_letter_unplaced(
        &self,
        ctx: &Context,
        unplaced: &[SubscriberIdentity],
        batch: &PubSubBatchTransport,
    ) {
        tracing::warn!(topic = %self.topic, subscribers = ?unplaced, "pubsub: no member hosts these subscribers' kinds; their batch goes to dead letters");
        let req = DeliverBatchRequestTransport {
            subscribers: Some(Subscribers {
                subscribers: unplaced.to_vec(),
            }),
            batch: Some(batch.clone()),
            topic: self.topic.clone(),
            acknowledge: false,
        };
        ctx.send(&ctx.system().dead_letter(), req);
    }

    /// Sends each member with subscribers the batch (Go: one `DeliverBatchRequest` per
    /// member, no sender); unplaced subscribers are a reported failure.
    fn publish(&self, ctx: &Context, batch: PubSubBatchTransport) -> PublishStatus {
        let (by_address, unplaced) = self.place(ctx);
        for (address, subscribers) in by_address {
            let req = DeliverBatchRequestTransport {
                subscribers: Some(Subscribers { subscribers }),
                batch: Some(batch.clone()),
                topic: self.topic.clone(),
                acknowledge: false,
            };
            ctx.send(&Pid::new(address, DELIVERY_NAME), req);
        }
        if unplaced.is_empty() {
            return PublishStatus::Ok;
        }
        self.dead_letter_unplaced(ctx, &unplaced, &batch);
        PublishStatus::Failed
    }

    /// An acknowledged publish: each member's delivery actor is asked to answer with its
    /// subscribers' failures; the requester gets the `PublishResponse` when all answered
    /// (or their wait ran out), listing every subscriber that did not handle the batch.
    /// The waits run in a task: the topic goes on serving meanwhile.
    fn publish_acknowledged(&self, ctx: &Context, mut batch: PubSubBatchTransport) {
        batch.acknowledged = false;
        let (by_address, unplaced) = self.place(ctx);
        let mut failed: Vec<SubscriberDeliveryReport> = unplaced
            .iter()
            .map(|s| {
                let why = "no member hosts the subscriber's kind".to_string();
                super::delivery::report(s.clone(), DeliveryStatus::OtherError, why)
            })
            .collect();
        if !unplaced.is_empty() {
            self.dead_letter_unplaced(ctx, &unplaced, &batch);
        }
        let wait = self.acknowledge_wait();
        let system = ctx.system().clone();
        let mut waits = Vec::with_capacity(by_address.len());
        for (address, subscribers) in by_address {
            let fut = ActorFuture::new(&system, wait);
            let req = DeliverBatchRequestTransport {
                subscribers: Some(Subscribers {
                    subscribers: subscribers.clone(),
                }),
                batch: Some(batch.clone()),
                topic: self.topic.clone(),
                acknowledge: true,
            };
            let envelope = MessageEnvelope::new(req).with_sender(Some(fut.pid().clone()));
            system
                .root()
                .send_envelope(&Pid::new(address.clone(), DELIVERY_NAME), envelope);
            waits.push((address, subscribers, fut));
        }
        let (requester, me) = (ctx.sender().cloned(), ctx.self_pid().clone());
        let topic = self.topic.clone();
        system.runtime().clone().spawn(async move {
            for (address, subscribers, fut) in waits {
                match fut.await {
                    Ok(answer) => {
                        if let Some(r) =
                            answer.downcast_ref::<NotifyAboutFailingSubscribersRequest>()
                        {
                            failed.extend(r.invalid_deliveries.iter().cloned());
                        }
                    }
                    Err(e) => {
                        // protoactor-go's delivery actor never answers: its subscribers did get
                        // the batch, but nothing says they handled it.
                        let why = format!(
                            "the delivery actor at {address} did not acknowledge within {wait:?} \
                             ({e}); a protoactor-go member never acknowledges"
                        );
                        tracing::warn!(topic = %topic, %why, "pubsub: acknowledged publish");
                        failed.extend(subscribers.into_iter().map(|s| {
                            super::delivery::report(s, DeliveryStatus::Timeout, why.clone())
                        }));
                    }
                }
            }
            if !failed.is_empty() {
                system
                    .root()
                    .send(&me, AcknowledgedFailures(failed.clone()));
            }
            let status = if failed.is_empty() {
                PublishStatus::Ok
            } else {
                PublishStatus::Failed
            };
            if let Some(r) = requester {
                let answer = PublishResponse {
                    status: status as i32,
                    acknowledged: true,
                    failed,
                };
                system.root().send(&r, answer);
            }
        });
    }

    /// Drops the PID subscribers a delivery report says are gone (as Go: identity
    /// subscribers stay, they are activated again).
    fn remove_unreachable(&mut self, system: &ActorSystem, reports: &[SubscriberDeliveryReport]) {
        let gone: Vec<SubscriberKey> = reports
            .iter()
            .filter(|r| r.status == DeliveryStatus::SubscriberNoLongerReachable as i32)
            .filter_map(|r| r.subscriber.as_ref().and_then(SubscriberKey::of))
            .filter(|k| matches!(k, SubscriberKey::Pid(..)))
            .collect();
        self.remove(system, |k| gone.contains(k));
    }
}

impl Actor for TopicActor {
    fn receive(&mut self, ctx: &mut Context) {
        if ctx.message_as::<Started>().is_some() {
            self.started(ctx);
        } else if ctx.message_as::<Stopping>().is_some() {
            if let Some(s) = self.topology.take() {
                ctx.system().event_stream().unsubscribe(&s);
            }
        } else if ctx.message_as::<ReceiveTimeout>().is_some() {
            let me = ctx.self_pid().clone();
            ctx.stop(&me);
        } else if let Some(init) = ctx.message_as::<Initialize>() {
            if let Some(d) = init
                .idle_timeout
                .and_then(|d| std::time::Duration::try_from(d).ok())
            {
                if !d.is_zero() {
                    ctx.set_receive_timeout(d);
                }
            }
            ctx.respond(Acknowledge {});
        } else if let Some(req) = ctx.take_message::<SubscribeRequest>() {
            if let Some(s) = req.subscriber {
                if let Some(k) = SubscriberKey::of(&s) {
                    self.subscribers.insert(k, s);
                    self.save(ctx.system());
                }
            }
            ctx.respond(SubscribeResponse {});
        } else if let Some(req) = ctx.take_message::<UnsubscribeRequest>() {
            if let Some(k) = req.subscriber.as_ref().and_then(SubscriberKey::of) {
                if self.subscribers.remove(&k).is_some() {
                    self.save(ctx.system());
                }
            }
            ctx.respond(UnsubscribeResponse {});
        } else if let Some(batch) = ctx.take_message::<PubSubBatchTransport>() {
            if batch.acknowledged {
                self.publish_acknowledged(ctx, batch);
            } else {
                let status = self.publish(ctx, batch);
                ctx.respond(PublishResponse {
                    status: status as i32,
                    ..Default::default()
                });
            }
        } else if let Some(req) = ctx.take_message::<NotifyAboutFailingSubscribersRequest>() {
            // As Go: only PID subscribers that are gone are removed; the rest is logged.
            tracing::warn!(topic = %self.topic, failed = ?req.invalid_deliveries, "pubsub: subscribers could not process a batch");
            self.remove_unreachable(ctx.system(), &req.invalid_deliveries);
            ctx.respond(NotifyAboutFailingSubscribersResponse {});
        } else if let Some(f) = ctx.take_message::<AcknowledgedFailures>() {
            self.remove_unreachable(ctx.system(), &f.0);
        } else if let Some(t) = ctx.message_as::<ClusterTopology>() {
            let left: Vec<String> = t.left.iter().map(|m| m.address()).collect();
            self.remove(
                ctx.system(),
                |k| matches!(k, SubscriberKey::Pid(a, _, _) if left.contains(a)),
            );
        }
    }
}
