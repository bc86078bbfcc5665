//! Cluster providers: where the member list comes from (an in-memory agent for tests,
//! automanaged HTTP health endpoints, and behind cargo features an etcd server or a Consul
//! agent).
//!
//! A provider registers this node (member mode), watches the membership, and hands every
//! complete member list, self included, to [`ProviderContext::update_members`]. It never
//! computes joined/left or blocks anything itself: the [`MemberList`] does that the same
//! way for every provider.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use protoactor::ActorSystem;

use crate::error::ClusterError;
use crate::member_list::MemberList;
use crate::proto::Member;

/// The future a provider returns from [`ClusterProvider::shutdown`].
pub type ProviderFuture = Pin<Box<dyn Future<Output = Result<(), ClusterError>> + Send>>;

/// What a provider gets from the cluster it serves: the cluster's name, this node as a
/// member, the actor system, the member list it feeds, and whether the cluster is shutting
/// down; nothing else of the cluster. Cheap to clone; keep it.
#[derive(Clone)]
pub struct ProviderContext(Arc<ProviderInner>);

struct ProviderInner {
    cluster_name: String,
    self_member: Member,
    system: ActorSystem,
    member_list: MemberList,
    shut_down: Arc<AtomicBool>,
}

impl ProviderContext {
    /// The context of a provider serving cluster `cluster_name` on `system`, this node being
    /// `self_member`; `shut_down` turns true when the cluster begins shutting down.
    pub(crate) fn new(
        cluster_name: impl Into<String>,
        self_member: Member,
        system: ActorSystem,
        member_list: MemberList,
        shut_down: Arc<AtomicBool>,
    ) -> Self {
        ProviderContext(Arc::new(ProviderInner {
            cluster_name: cluster_name.into(),
            self_member,
            system,
            member_list,
            shut_down,
        }))
    }
    /// The cluster name (members of other clusters must be ignored).
    pub fn cluster_name(&self) -> &str {
        &self.0.cluster_name
    }
    /// This node as a member: `host`/`port` of its advertised remote address, `id` =
    /// [`ClusterProvider::member_id`] (the actor system id unless the provider says
    /// otherwise), and its kinds (sorted). A client's member has no kinds and is not
    /// registered.
    pub fn self_member(&self) -> &Member {
        &self.0.self_member
    }
    /// The actor system (its runtime is where a provider spawns its tasks).
    pub fn system(&self) -> &ActorSystem {
        &self.0.system
    }
    /// The member list the provider feeds.
    pub fn member_list(&self) -> &MemberList {
        &self.0.member_list
    }
    /// Publishes the complete current member list, self included (in member mode).
    pub fn update_members(&self, members: Vec<Member>) {
        self.0.member_list.update_cluster_topology(members)
    }
    /// Says that the provider started without reaching its backend (a start-anyway mode) and
    /// why: until [`ProviderContext::set_connected`], every grain call fails at once with
    /// [`ClusterError::ProviderNotConnected`] carrying `reason`, instead of finding an empty
    /// member list that would read like a hosting error.
    pub fn set_not_connected(&self, reason: impl Into<String>) {
        self.0
            .member_list
            .set_provider_not_connected(Some(reason.into()))
    }
    /// Says that the provider reached its backend (after [`ProviderContext::set_not_connected`]).
    pub fn set_connected(&self) {
        self.0.member_list.set_provider_not_connected(None)
    }
    /// True once the cluster began shutting down or its actor system is shut down: a
    /// provider's tasks end then.
    pub fn is_shut_down(&self) -> bool {
        self.0.shut_down.load(Ordering::Acquire) || self.0.system.is_shut_down()
    }
}

/// A source of membership. `start_member`/`start_client` must not block: they start what
/// the provider runs (tasks on `ctx.system().runtime()`, listeners) and return; failures
/// they can see at once (a port in use) are errors. The first member list may come later.
pub trait ClusterProvider: Send + Sync + 'static {
    /// Registers this node (`ctx.self_member()`) and starts watching the membership.
    fn start_member(&self, ctx: ProviderContext) -> Result<(), ClusterError>;
    /// Starts watching the membership without registering (client mode).
    fn start_client(&self, ctx: ProviderContext) -> Result<(), ClusterError>;
    /// Deregisters (when `graceful`) and stops watching.
    fn shutdown(&self, graceful: bool) -> ProviderFuture;
    /// This node's member id in the topology, from the cluster name and the actor system
    /// id. Go members of the same provider must compute the same for their own ids, since
    /// owners tie-break on ids: the actor system id for most providers, but
    /// `<cluster>@<system id>` for etcd (as protoactor-go's `cluster/clusterproviders/etcd/etcd_provider.go`).
    fn member_id(&self, _cluster_name: &str, system_id: &str) -> String {
        system_id.to_string()
    }
}
