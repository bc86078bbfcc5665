//! Cluster settings. Defaults are protoactor-go's (`cluster/config.go`,
//! `cluster_config_context.go`).

use std::sync::Arc;
use std::time::Duration;

use protoactor::ActorSystem;
use protoactor_remote::Remote;

use crate::error::ClusterError;
use crate::gossip::GossipSecret;
use crate::identity_lookup::IdentityLookup;
use crate::kind::Kind;
use crate::provider::ClusterProvider;

/// Something that runs on every node of a cluster besides the grains: it may add kinds (hosted
/// and advertised by members) and start actors before the provider announces the node (pub/sub
/// is one: [`crate::pubsub`]). It finds the cluster through
/// `Cluster::from_system(system)` once started.
pub trait ClusterService: Send + Sync + 'static {
    /// Kinds a member hosts for this service (none on a client).
    fn kinds(&self) -> Vec<Kind> {
        Vec::new()
    }
    /// Starts the service on `system` (member or client); called once, after the cluster is
    /// set on the system and before the provider starts.
    fn start(
        &self,
        system: &ActorSystem,
        remote: &Remote,
        client: bool,
    ) -> Result<(), ClusterError>;
}

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
    /// Services started with the cluster (e.g. pub/sub); their kinds are hosted too.
    pub services: Vec<Arc<dyn ClusterService>>,
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
    /// How often the placement actor re-checks its activations against the current
    /// topology and stops those another member owns (default 1 s; it checks on every
    /// topology change, so a re-check scans only a topology not checked yet, and moves the
    /// window of stops on).
    pub placement_check_interval: Duration,
    /// The longest the placement actor holds an activation request for an identity its
    /// view gives to another member, when the caller's view may be newer than its own (an
    /// unknown topology hash, or Go's 0): it answers at its next topology change, or
    /// `failed` after this long (default 1 s).
    pub stale_view_wait: Duration,
    /// How long a member that just joined waits, at most, for the former owner of an
    /// identity to release it (its `ActivationTerminated`) before activating it (default
    /// 1 s). Only identities that moved to the new member wait, only within this time after
    /// the join, and only until the release arrives.
    pub handoff_timeout: Duration,
    /// The cluster secret members sign their gossip values with (default none, as Go).
    /// With one, values without a valid signature are dropped: a peer without the secret
    /// cannot inject gossip. Rust-only: protoactor-go members do not sign.
    pub gossip_secret: Option<GossipSecret>,
    /// Whether a member the provider lists joins this node's topology only once its own
    /// gossip reached this node directly (a gossip request it sent, or its answer to this
    /// node's request), so that a listed member this node's transport cannot exchange
    /// messages with (with mutual TLS: one without a certificate of the CA) gets no
    /// identities. `None` (the default): on when the remote uses mutual TLS. Needs no
    /// secret: protoactor-go members gossip, so they are admitted. With a gossip secret,
    /// the secret's rule applies instead (a value the member signed).
    pub gossip_admission: Option<bool>,
    /// Per-member gossip signatures bound to each member's certificate, and peer address
    /// binding on the remote (default off; needs the remote to use mutual TLS; Rust-only:
    /// protoactor-go members neither sign nor bind). See
    /// [`with_member_signatures`](Self::with_member_signatures).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub member_signatures: bool,
}

impl ClusterConfig {
    /// How long a member's gossip heartbeat stays valid by default (protoactor-go: 20 s).
    pub const DEFAULT_HEARTBEAT_EXPIRATION: Duration = Duration::from_secs(20);

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
            services: Vec::new(),
            request_timeout: Duration::from_secs(5),
            activation_timeout: Duration::from_secs(5),
            gossip_interval: Duration::from_millis(300),
            gossip_request_timeout: Duration::from_millis(500),
            gossip_fan_out: 3,
            gossip_max_send: 50,
            heartbeat_expiration: Self::DEFAULT_HEARTBEAT_EXPIRATION,
            block_duration: Duration::from_secs(3600),
            shutdown_timeout: Duration::from_secs(10),
            placement_check_interval: Duration::from_secs(1),
            stale_view_wait: Duration::from_secs(1),
            handoff_timeout: Duration::from_secs(1),
            gossip_secret: None,
            gossip_admission: None,
            #[cfg(feature = "tls")]
            member_signatures: false,
        }
    }
    /// Signs this member's gossip values with `secret` and takes only values signed with
    /// it (every member of the cluster needs the same secret; no protoactor-go member can
    /// join such a cluster).
    pub fn with_gossip_secret(mut self, secret: GossipSecret) -> Self {
        self.gossip_secret = Some(secret);
        self
    }
    /// One member cannot speak for another (Rust-only clusters with mutual TLS, every
    /// member with a certificate of the cluster's CA naming the host of its own address):
    /// * each member signs its own gossip values with its TLS private key and publishes its
    ///   certificate in its gossip state; a value filed under member X is taken only if
    ///   signed by the key of the certificate X published, which must chain to the CA the
    ///   remote trusts and name the host of X's address as the provider lists it (refusals
    ///   are counted in [`GossipRejections`](crate::gossip::GossipRejections)
    ///   `bad_signature` and `bad_certificate`); members are admitted to the topology by
    ///   their signed values;
    /// * the remote binds peer addresses ([`Remote::bind_peer_addresses`](protoactor_remote::Remote::bind_peer_addresses)):
    ///   a connection may claim only sender addresses whose host its client certificate
    ///   names, so a member cannot send messages as another.
    ///
    /// Members sharing a host (one certificate naming it) can still speak for each other,
    /// and any member can still activate any grain. [`Cluster::start_member`](crate::Cluster::start_member)
    /// fails with [`ClusterError::MemberSignatures`]
    /// without mutual TLS or together with a gossip secret. protoactor-go members cannot
    /// join such a cluster (their values are unsigned).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn with_member_signatures(mut self) -> Self {
        self.member_signatures = true;
        self
    }
    /// Turns gossip admission on or off whatever the remote's TLS (see
    /// [`gossip_admission`](Self::gossip_admission); on by default with mutual TLS only).
    pub fn with_gossip_admission(mut self, on: bool) -> Self {
        self.gossip_admission = Some(on);
        self
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
    /// Starts `service` with the cluster (and hosts its kinds on a member).
    pub fn with_service(mut self, service: impl ClusterService) -> Self {
        self.services.push(Arc::new(service));
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
    /// Sets how often the placement actor re-checks its activations.
    pub fn with_placement_check_interval(mut self, interval: Duration) -> Self {
        self.placement_check_interval = interval;
        self
    }
    /// Sets the longest an activation request waits for this node's view to catch up.
    pub fn with_stale_view_wait(mut self, wait: Duration) -> Self {
        self.stale_view_wait = wait;
        self
    }
    /// Sets the longest a joining member waits for a former owner's release.
    pub fn with_handoff_timeout(mut self, timeout: Duration) -> Self {
        self.handoff_timeout = timeout;
        self
    }
    /// Sets the longest a graceful shutdown waits for local grains to stop.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
}
