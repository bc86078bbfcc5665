//! The topic actor (kind `prototopic`), as protoactor-go's `cluster/pubsub_topic.go`: it keeps
//! the subscribers, fans each published batch out to the `$pubsub-delivery` actor of every
//! member with subscribers, and drops PID subscribers that are gone. Unlike Go it loads and
//! saves the subscribers in a [`SubscriptionStore`], and it places a cluster-identity
//! subscriber by its cached PID or its owner without an activation round trip per batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use protoactor::{
    Actor, Context, ContextOps, Pid, ReceiveTimeout, Started, Stopping, Subscription,
};

use super::store::SubscriptionStore;
use super::DELIVERY_NAME;
use crate::cluster::Cluster;
use crate::grain::GrainContext;
use crate::proto::{
    subscriber_identity::Identity, Acknowledge, ClusterTopology, DeliverBatchRequestTransport,
    DeliveryStatus, Initialize, NotifyAboutFailingSubscribersRequest,
    NotifyAboutFailingSubscribersResponse, PubSubBatchTransport, PublishResponse, PublishStatus,
    SubscribeRequest, SubscribeResponse, SubscriberIdentity, Subscribers, UnsubscribeRequest,
    UnsubscribeResponse,
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
}

impl TopicActor {
    pub(crate) fn new(store: Arc<dyn SubscriptionStore>) -> Self {
        TopicActor {
            topic: String::new(),
            subscribers: BTreeMap::new(),
            store,
            topology: None,
        }
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
            Err(e) => {
                tracing::error!(topic = %self.topic, error = %e, "pubsub: cannot load the subscriptions")
            }
        }
        // PID subscribers on members that are gone while the topic was elsewhere.
        if let Some(c) = Cluster::from_system(ctx.system()) {
            let topology = c.member_list().topology();
            let alive: Vec<String> = topology.members().map(|m| m.address()).collect();
            self.remove(|k| matches!(k, SubscriberKey::Pid(a, _, _) if !alive.contains(a)));
        }
        tracing::debug!(topic = %self.topic, subscribers = self.subscribers.len(), "pubsub: topic started");
    }

    fn save(&self) {
        let list = Subscribers {
            subscribers: self.subscribers.values().cloned().collect(),
        };
        if let Err(e) = self.store.set(&self.topic, &list) {
            tracing::error!(topic = %self.topic, error = %e, "pubsub: cannot save the subscriptions");
        }
    }

    fn remove(&mut self, gone: impl Fn(&SubscriberKey) -> bool) {
        let before = self.subscribers.len();
        self.subscribers.retain(|k, _| !gone(k));
        let removed = before - self.subscribers.len();
        if removed > 0 {
            tracing::warn!(topic = %self.topic, removed, "pubsub: removed subscribers that are dead or on members that left");
            self.save();
        }
    }

    /// Groups the subscribers by the address of their delivery actor and sends each group the
    /// batch (Go: one `DeliverBatchRequest` per member, no sender). A cluster-identity
    /// subscriber goes to the member of its cached PID, else to its owner (where it is, or
    /// will be, activated); one with no owner is a reported failure, its batch a dead letter.
    fn publish(&self, ctx: &Context, batch: PubSubBatchTransport) -> PublishStatus {
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
        for (address, subscribers) in by_address {
            let req = DeliverBatchRequestTransport {
                subscribers: Some(Subscribers { subscribers }),
                batch: Some(batch.clone()),
                topic: self.topic.clone(),
            };
            ctx.send(&Pid::new(address, DELIVERY_NAME), req);
        }
        if unplaced.is_empty() {
            return PublishStatus::Ok;
        }
        tracing::warn!(topic = %self.topic, subscribers = ?unplaced, "pubsub: no member hosts these subscribers' kinds; their batch goes to dead letters");
        let req = DeliverBatchRequestTransport {
            subscribers: Some(Subscribers {
                subscribers: unplaced,
            }),
            batch: Some(batch),
            topic: self.topic.clone(),
        };
        ctx.send(&ctx.system().dead_letter(), req);
        PublishStatus::Failed
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
                    self.save();
                }
            }
            ctx.respond(SubscribeResponse {});
        } else if let Some(req) = ctx.take_message::<UnsubscribeRequest>() {
            if let Some(k) = req.subscriber.as_ref().and_then(SubscriberKey::of) {
                if self.subscribers.remove(&k).is_some() {
                    self.save();
                }
            }
            ctx.respond(UnsubscribeResponse {});
        } else if let Some(batch) = ctx.take_message::<PubSubBatchTransport>() {
            let status = self.publish(ctx, batch);
            ctx.respond(PublishResponse {
                status: status as i32,
            });
        } else if let Some(req) = ctx.take_message::<NotifyAboutFailingSubscribersRequest>() {
            // As Go: only PID subscribers that are gone are removed; the rest is logged.
            let gone: Vec<SubscriberKey> = req
                .invalid_deliveries
                .iter()
                .filter(|r| r.status == DeliveryStatus::SubscriberNoLongerReachable as i32)
                .filter_map(|r| r.subscriber.as_ref().and_then(SubscriberKey::of))
                .filter(|k| matches!(k, SubscriberKey::Pid(..)))
                .collect();
            tracing::warn!(topic = %self.topic, failed = ?req.invalid_deliveries, "pubsub: subscribers could not process a batch");
            self.remove(|k| gone.contains(k));
            ctx.respond(NotifyAboutFailingSubscribersResponse {});
        } else if let Some(t) = ctx.message_as::<ClusterTopology>() {
            let left: Vec<String> = t.left.iter().map(|m| m.address()).collect();
            self.remove(|k| matches!(k, SubscriberKey::Pid(a, _, _) if left.contains(a)));
        }
    }
}
