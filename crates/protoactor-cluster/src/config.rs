//! Cluster settings. Defaults are protoactor-go's (`cluster/config.go`,
//! `cluster_config_context.go`).

use std::sync::Arc;
use std::time::Duration;

use crate::identity_lookup::IdentityLookup;
use crate::kind::Kind;
use crate::provider::ClusterProvider;

/// How a node joins a cluster: the cluster name, where membership comes from, how grains are
/// located, which kinds this node hosts, and the timing of requests and gossip.
#[derive(Clone)]
pub struct ClusterConfig {
    /// The cluster name; members of other clusters are ignored by the providers.
    pub name: String,
    /// The membership source.
    pub provider: Arc<dyn ClusterProvider>,
    /// How grains are located and activated.
    pub identity_lookup: Arc<dyn IdentityLookup>,
    /// The kinds this node hosts (a client hosts none).
    pub kinds: Vec<Kind>,
    /// The overall deadline of a grain request, retries included (default 5 s).
    pub request_timeout: Duration,
    /// The deadline of one `ActivationRequest` round trip (default 5 s, as Go); a request
    /// never waits past its own deadline for it.
    pub activation_timeout: Duration,
    /// Gossip tick (default 300 ms).
    pub gossip_interval: Duration,
    /// Timeout of one gossip request (default 500 ms).
    pub gossip_request_timeout: Duration,
    /// Peers gossiped to per tick (default 3).
    pub gossip_fan_out: usize,
    /// Most member states per gossip message, besides our own (default 50).
    pub gossip_max_send: usize,
    /// A member whose heartbeat is older than this is blocked (default 20 s).
    pub heartbeat_expiration: Duration,
    /// How long an id blocked by gossip stays blocked (default 1 h; Go: forever).
    pub block_duration: Duration,
    /// The longest a graceful shutdown waits for the local grains to stop (default 10 s).
    pub shutdown_timeout: Duration,
}

impl ClusterConfig {
    /// A config for cluster `name` with `provider` and `identity_lookup`, no kinds, and
    /// protoactor-go's default timings.
    pub fn new(
        name: impl Into<String>,
        provider: impl ClusterProvider,
        identity_lookup: impl IdentityLookup,
    ) -> Self {
        ClusterConfig {
            name: name.into(),
            provider: Arc::new(provider),
            identity_lookup: Arc::new(identity_lookup),
            kinds: Vec::new(),
            request_timeout: Duration::from_secs(5),
            activation_timeout: Duration::from_secs(5),
            gossip_interval: Duration::from_millis(300),
            gossip_request_timeout: Duration::from_millis(500),
            gossip_fan_out: 3,
            gossip_max_send: 50,
            heartbeat_expiration: Duration::from_secs(20),
            block_duration: Duration::from_secs(3600),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
    /// Hosts `kind` on this node.
    pub fn with_kind(mut self, kind: Kind) -> Self {
        self.kinds.push(kind);
        self
    }
    /// Hosts every kind in `kinds`.
    pub fn with_kinds(mut self, kinds: impl IntoIterator<Item = Kind>) -> Self {
        self.kinds.extend(kinds);
        self
    }
    /// Sets the default overall deadline of grain requests.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
    /// Sets the deadline of one activation round trip.
    pub fn with_activation_timeout(mut self, timeout: Duration) -> Self {
        self.activation_timeout = timeout;
        self
    }
    /// Sets the gossip tick.
    pub fn with_gossip_interval(mut self, interval: Duration) -> Self {
        self.gossip_interval = interval;
        self
    }
    /// Sets the heartbeat expiration.
    pub fn with_heartbeat_expiration(mut self, expiration: Duration) -> Self {
        self.heartbeat_expiration = expiration;
        self
    }
    /// Sets how long gossip-blocked ids stay blocked.
    pub fn with_block_duration(mut self, duration: Duration) -> Self {
        self.block_duration = duration;
        self
    }
    /// Sets the longest a graceful shutdown waits for local grains to stop.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
}
