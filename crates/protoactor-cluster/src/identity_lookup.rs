//! Identity lookup: how a node finds (and causes) the activation of a grain. The only
//! lookup of the Go cluster is disthash ([`crate::DistHashIdentityLookup`]).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use protoactor::Pid;

use crate::cluster::{Cluster, ClusterError};
use crate::proto::ClusterIdentity;

/// The future of one lookup attempt.
pub type LookupFuture = Pin<Box<dyn Future<Output = Result<Pid, ClusterError>> + Send>>;
/// The future of a lookup's shutdown.
pub type ShutdownFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Locates grains. The cluster calls `setup` once at start, `get` for each cache miss (and
/// retries errors until the request's deadline), and `shutdown` once.
pub trait IdentityLookup: Send + Sync + 'static {
    /// Starts the lookup's actors for `cluster` (`client`: this node hosts no kinds).
    fn setup(&self, cluster: &Cluster, client: bool) -> Result<(), ClusterError>;
    /// One attempt to find or activate `ci`, waiting at most `timeout`.
    fn get(&self, cluster: &Cluster, ci: &ClusterIdentity, timeout: Duration) -> LookupFuture;
    /// Stops the lookup; `graceful`: stop the local activations and wait for them. Not
    /// graceful: everything is stopped before this returns (the future may be dropped).
    fn shutdown(&self, cluster: &Cluster, graceful: bool) -> ShutdownFuture;
}
