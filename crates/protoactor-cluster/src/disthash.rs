//! disthash: the identity lookup of the Go cluster. The owner of a grain is chosen by
//! rendezvous hashing over the current topology (FNV-1a-32, [`crate::hash`]); the caller asks
//! the owner's `partition-activator` with an `ActivationRequest` and gets the grain's PID in
//! an `ActivationResponse`. The owner activates on request even if its own view of the
//! topology disagrees (as Go does), and stops its activations whose owner changed when the
//! topology changes ([`crate::activator`]).

use protoactor::ContextOps;
use std::time::Duration;

use parking_lot::Mutex;
use protoactor::{FutureError, Pid, Subscription};

use crate::activator::{self, PARTITION_ACTIVATOR};
use crate::error::ClusterError;
use crate::identity_lookup::{IdentityLookup, LookupContext, LookupFuture, ShutdownFuture};
use crate::proto::{ActivationRequest, ActivationResponse, ClusterIdentity, ClusterTopology};

/// The disthash identity lookup (`disthash.New()` in Go).
#[derive(Default)]
pub struct DistHashIdentityLookup {
    started: Mutex<Option<(Pid, Subscription)>>,
}

impl DistHashIdentityLookup {
    /// A new lookup (one per cluster node).
    pub fn new() -> Self {
        Self::default()
    }
}

impl IdentityLookup for DistHashIdentityLookup {
    fn setup(&self, node: &LookupContext, _client: bool) -> Result<(), ClusterError> {
        let mut started = self.started.lock();
        if started.is_some() {
            return Err(ClusterError::AlreadyStarted);
        }
        let system = node.system();
        let pid = system
            .root()
            .spawn_named(&activator::props(node), PARTITION_ACTIVATOR)
            .map_err(|e| ClusterError::Spawn(e.to_string()))?;
        // The placement actor re-checks its activations on every topology, in order.
        let weak = node.downgrade();
        let target = pid.clone();
        let sub = system
            .event_stream()
            .subscribe_to::<ClusterTopology, _>(move |t| {
                if let Some(c) = weak.upgrade() {
                    c.system().root().send(&target, t.clone());
                }
            });
        *started = Some((pid, sub));
        Ok(())
    }

    fn get(&self, node: &LookupContext, ci: &ClusterIdentity, timeout: Duration) -> LookupFuture {
        let Some(owner) = node.member_list().owner(&ci.kind, &ci.identity) else {
            let kind = ci.kind.clone();
            return Box::pin(async move { Err(ClusterError::NoOwner { kind }) });
        };
        let target = Pid::new(owner.as_str(), PARTITION_ACTIVATOR);
        // As Go sends it: no request id, topology hash 0.
        let request = ActivationRequest {
            cluster_identity: Some(ci.clone()),
            request_id: String::new(),
            topology_hash: 0,
        };
        let fut = node
            .system()
            .root()
            .request_future(&target, request, timeout);
        Box::pin(async move {
            match fut.await {
                Ok(msg) => match msg.downcast_ref::<ActivationResponse>() {
                    Some(ActivationResponse {
                        pid: Some(pid),
                        failed: false,
                        ..
                    }) => Ok(pid.to_pid()),
                    Some(_) => Err(ClusterError::ActivationFailed { owner }),
                    None => Err(ClusterError::UnexpectedResponse {
                        expected: "cluster.ActivationResponse",
                        actual: msg.type_name(),
                    }),
                },
                Err(FutureError::DeadLetter) => Err(ClusterError::DeadLetter),
                Err(FutureError::Timeout) => Err(ClusterError::Timeout),
                Err(e) => Err(ClusterError::Future(e)),
            }
        })
    }

    fn shutdown(&self, node: &LookupContext, graceful: bool) -> ShutdownFuture {
        let Some((pid, sub)) = self.started.lock().take() else {
            return Box::pin(async {});
        };
        let system = node.system().clone();
        system.event_stream().unsubscribe(&sub);
        if !graceful {
            // At once, so a caller may drop the future (a failed start does).
            system.root().stop(&pid);
            return Box::pin(async {});
        }
        let wait = node.shutdown_timeout();
        Box::pin(async move {
            // Poison: activation requests already queued are answered first; stopping the
            // placement actor stops every grain, which broadcasts ActivationTerminated.
            let fut = system.root().poison_future(&pid);
            let _ = tokio::time::timeout(wait, fut).await;
        })
    }
}
