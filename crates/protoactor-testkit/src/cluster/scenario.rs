//! Scenario scaffolding: N members of one provider in this process ([`NodeBuilder`]), or
//! N automanaged members in N processes ([`AutoManagedPeers`] with
//! [`MemberProcess`](super::MemberProcess)).

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use protoactor::prelude::*;
use protoactor::Config;
use protoactor_cluster::automanaged::{AutoManagedConfig, AutoManagedProvider};
use protoactor_cluster::gossip::Gossiper;
use protoactor_cluster::{
    CallOptions, Cluster, ClusterConfig, ClusterError, ClusterProvider, ClusterService,
    DistHashIdentityLookup, GrainContext, IdentityLookup, Kind,
};
use protoactor_remote::{Remote, RemoteConfig, Serialization, WireVariant};

use super::hello::{hello_props, serialization, HelloRequest, HelloResponse};
use super::protocol::Provider;
use crate::ports::free_port;

/// One member (or client) in this process: its actor system, remote and cluster.
pub struct Node {
    pub system: ActorSystem,
    pub remote: Arc<Remote>,
    pub cluster: Cluster,
}

impl Node {
    /// The member id.
    pub fn id(&self) -> String {
        self.cluster.self_member().id.clone()
    }

    /// The member's address (`host:port`).
    pub fn address(&self) -> String {
        self.cluster.address().to_string()
    }

    /// The member's gossip actor (panics on a client, which has none).
    pub fn gossiper(&self) -> Arc<Gossiper> {
        self.system
            .extension::<Gossiper>()
            .expect("a member gossips")
    }

    /// Leaves the cluster (gracefully or not), then stops remoting and the system.
    pub async fn stop(self, graceful: bool) {
        self.cluster.shutdown(graceful).await;
        self.remote.shutdown();
        self.system.shutdown();
    }

    /// Calls the hello grain `identity` of `kind` through this node's cluster with
    /// `HelloRequest { name }` (20 s overall deadline).
    pub async fn hello(
        &self,
        kind: &str,
        identity: &str,
        name: &str,
    ) -> Result<HelloResponse, ClusterError> {
        self.cluster
            .request_as::<HelloResponse, _>(
                identity,
                kind,
                HelloRequest {
                    name: name.to_string(),
                },
                &CallOptions::default().with_timeout(Duration::from_secs(20)),
            )
            .await
    }

    /// True once every id in `ids` is (`present`) or is not (`!present`) in this member's
    /// topology; false when `timeout` passes first.
    pub async fn await_ids(&self, ids: &[String], present: bool, timeout: Duration) -> bool {
        let ids = ids.to_vec();
        self.cluster
            .member_list()
            .wait_until(timeout, move |t| {
                ids.iter().all(|id| t.member(id).is_some() == present)
            })
            .await
    }
}

/// A [`Node`] that leaves its cluster (not gracefully) and stops when dropped, for
/// synchronous tests (dropped outside any runtime): the node of a failed test goes too.
pub struct ScopedNode(Node);

impl Deref for ScopedNode {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.0
    }
}

impl Drop for ScopedNode {
    fn drop(&mut self) {
        self.0.cluster.shutdown_blocking(false);
        self.0.remote.shutdown();
        self.0.system.shutdown();
    }
}

type RemoteConfigFn = Arc<dyn Fn() -> RemoteConfig + Send + Sync>;
type RegisterFn = Arc<dyn Fn(&Serialization) + Send + Sync>;
type LookupFn = Arc<dyn Fn() -> Arc<dyn IdentityLookup> + Send + Sync>;
type ConfigFn = Arc<dyn Fn(ClusterConfig) -> ClusterConfig + Send + Sync>;

/// An automanaged provider for a member in this process: its health endpoint on
/// `127.0.0.1:<auto_port>` (0 for a client), polling `peers` every `refresh`.
pub fn automanaged(
    auto_port: u16,
    peers: impl IntoIterator<Item = impl Into<String>>,
    refresh: Duration,
) -> AutoManagedProvider {
    AutoManagedProvider::new(
        AutoManagedConfig::new(
            auto_port,
            peers.into_iter().map(Into::into).collect::<Vec<_>>(),
        )
        .with_bind_host("127.0.0.1")
        .with_refresh(refresh),
    )
}

/// Kind `kind` of grains that hand each message of type `M` to `on` with their identity,
/// and answer nothing (the subscribers and sinks of the scenarios).
pub fn sink_kind<M: Message>(kind: &str, on: impl Fn(&str, &M) + Send + Sync + 'static) -> Kind {
    let on = Arc::new(on);
    Kind::new(
        kind,
        Props::from_func(move |ctx| {
            if let Some(m) = ctx.message_as::<M>() {
                let me = ctx.cluster_identity().expect("a grain has an identity");
                on(&me.identity, m);
            }
        }),
    )
}

/// Starts members of cluster `name` in this process, each with its own actor system and
/// remote on a loopback port: by default protoactor-go's 2024 wire variant
/// (`WireVariant::Legacy2024`), the hello grain's messages registered, disthash identity
/// lookup and no kinds.
///
/// ```no_run
/// use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
/// use protoactor_testkit::cluster::NodeBuilder;
///
/// let agent = InMemAgent::new();
/// let members = NodeBuilder::new("test")
///     .with_hello_kinds(&["hello"])
///     .members(3, || TestProvider::new(&agent));
/// assert_eq!(members.len(), 3);
/// ```
#[derive(Clone)]
pub struct NodeBuilder {
    name: String,
    system_config: Option<Config>,
    remote_config: RemoteConfigFn,
    kinds: Vec<Kind>,
    lookup: Option<LookupFn>,
    types: Vec<RegisterFn>,
    configure: Vec<ConfigFn>,
}

impl NodeBuilder {
    /// Members of cluster `name` (see the type's defaults).
    pub fn new(name: &str) -> Self {
        NodeBuilder {
            name: name.to_string(),
            system_config: None,
            remote_config: Arc::new(|| {
                RemoteConfig::new("127.0.0.1", 0)
                    .with_wire_variant(WireVariant::Legacy2024)
                    .with_serialization(serialization())
            }),
            kinds: Vec::new(),
            lookup: None,
            types: Vec::new(),
            configure: Vec::new(),
        }
    }

    /// The identity lookup of each node, made anew for each (default: disthash).
    pub fn with_identity_lookup<L: IdentityLookup>(
        mut self,
        lookup: impl Fn() -> L + Send + Sync + 'static,
    ) -> Self {
        self.lookup = Some(Arc::new(move || {
            Arc::new(lookup()) as Arc<dyn IdentityLookup>
        }));
        self
    }

    /// Runs a cluster service on each member, made anew for each (e.g.
    /// `|| PubSub::new(config.clone())`).
    pub fn with_service<S: ClusterService>(
        self,
        service: impl Fn() -> S + Send + Sync + 'static,
    ) -> Self {
        self.with_cluster_config(move |config| config.with_service(service()))
    }

    /// Changes each member's cluster config (after the builder's name, kinds and lookup),
    /// e.g. `|c| c.with_gossip_interval(..)`.
    pub fn with_cluster_config(
        mut self,
        change: impl Fn(ClusterConfig) -> ClusterConfig + Send + Sync + 'static,
    ) -> Self {
        self.configure.push(Arc::new(change));
        self
    }

    fn with_lookup(&self, mut config: ClusterConfig) -> ClusterConfig {
        if let Some(l) = &self.lookup {
            config.identity_lookup = l();
        }
        config
    }

    /// The actor systems' config (default: `ActorSystem::new()`'s).
    pub fn with_system_config(mut self, config: Config) -> Self {
        self.system_config = Some(config);
        self
    }

    /// The remotes' config, made anew for each member.
    pub fn with_remote_config(
        mut self,
        config: impl Fn() -> RemoteConfig + Send + Sync + 'static,
    ) -> Self {
        self.remote_config = Arc::new(config);
        self
    }

    /// Registers more message types on each member's remote once it is started, e.g. a
    /// generated `register_types` (the default remote config registers the hello grain's).
    pub fn with_types(mut self, register: impl Fn(&Serialization) + Send + Sync + 'static) -> Self {
        self.types.push(Arc::new(register));
        self
    }

    /// Hosts `kind` on every member.
    pub fn with_kind(mut self, kind: Kind) -> Self {
        self.kinds.push(kind);
        self
    }

    /// Hosts the hello grain ([`hello_props`]) under each name in `kinds`.
    pub fn with_hello_kinds(mut self, kinds: &[&str]) -> Self {
        self.kinds
            .extend(kinds.iter().map(|k| Kind::new(*k, hello_props())));
        self
    }

    /// A new actor system with remoting started (no cluster yet).
    pub fn start_remote(&self) -> (ActorSystem, Arc<Remote>) {
        let system = match &self.system_config {
            Some(c) => ActorSystem::with_config(c.clone()),
            None => ActorSystem::new(),
        };
        let remote = Remote::start(&system, (self.remote_config)()).expect("remote starts");
        for register in &self.types {
            register(remote.serialization());
        }
        (system, remote)
    }

    /// The cluster config of a member on `provider` (the builder's name, kinds, lookup and
    /// config changes).
    pub fn config(&self, provider: impl ClusterProvider) -> ClusterConfig {
        let config = self.with_lookup(
            ClusterConfig::new(self.name.as_str(), provider, DistHashIdentityLookup::new())
                .with_kinds(self.kinds.iter().cloned()),
        );
        self.configure.iter().fold(config, |c, change| change(c))
    }

    /// A member on `provider`, hosting the builder's kinds.
    pub fn member(&self, provider: impl ClusterProvider) -> Node {
        let (system, remote) = self.start_remote();
        let cluster =
            Cluster::start_member(&system, &remote, self.config(provider)).expect("member starts");
        Node {
            system,
            remote,
            cluster,
        }
    }

    /// [`Self::member`], stopped when dropped.
    pub fn scoped_member(&self, provider: impl ClusterProvider) -> ScopedNode {
        ScopedNode(self.member(provider))
    }

    /// A client on `provider` (calls grains, hosts none, not registered).
    pub fn client(&self, provider: impl ClusterProvider) -> Node {
        let (system, remote) = self.start_remote();
        let config = self.with_lookup(ClusterConfig::new(
            self.name.as_str(),
            provider,
            DistHashIdentityLookup::new(),
        ));
        let cluster = Cluster::start_client(&system, &remote, config).expect("client starts");
        Node {
            system,
            remote,
            cluster,
        }
    }

    /// `n` members, each on a provider from `provider`.
    pub fn members<P: ClusterProvider>(
        &self,
        n: usize,
        mut provider: impl FnMut() -> P,
    ) -> Vec<Node> {
        (0..n).map(|_| self.member(provider())).collect()
    }
}

/// The health ports and peer list of `n` automanaged members (one a process, or one a
/// node), every port free when chosen.
#[derive(Debug, Clone)]
pub struct AutoManagedPeers {
    /// Each member's health port.
    pub ports: Vec<u16>,
    /// Every member's health endpoint, `127.0.0.1:<port>`.
    pub peers: Vec<String>,
}

impl AutoManagedPeers {
    /// Ports for `n` members.
    pub fn new(n: usize) -> Self {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let peers = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        AutoManagedPeers { ports, peers }
    }

    /// The provider of member `i`.
    pub fn provider(&self, i: usize) -> Provider {
        Provider::AutoManaged {
            auto_port: self.ports[i],
            peers: self.peers.clone(),
        }
    }
}
