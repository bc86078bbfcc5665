//! disthash: the identity lookup of the Go cluster. The owner of a grain is chosen by
//! rendezvous hashing over the current topology (FNV-1a-32, [`crate::hash`]); the caller asks
//! the owner's `partition-activator` with an `ActivationRequest` and gets the grain's PID in
//! an `ActivationResponse`. Unlike Go's, the owner activates only identities its own view
//! gives to it, and stops the activations another member owns on every topology change and
//! periodically ([`crate::activator`]). The request carries the caller's topology hash (Go
//! sends 0), so the owner can tell a caller whose view is behind (refused at once) from one
//! whose view may be ahead (the owner waits briefly for its own view). A refusal carries the
//! owner's hash; a caller whose view differs waits for its view to change and asks again at
//! once. A request to a member that leaves the caller's view meanwhile is abandoned and the
//! new owner asked.

use protoactor::ContextOps;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use protoactor::{FutureError, Pid, Subscription};

use crate::activator::{self, PARTITION_ACTIVATOR};
use crate::error::ClusterError;
use crate::identity_lookup::{IdentityLookup, LookupContext, LookupFuture, ShutdownFuture};
use crate::proto::{
    ActivationRequest, ActivationResponse, ActivationTerminated, ClusterIdentity, ClusterTopology,
};

/// The disthash identity lookup (`disthash.New()` in Go).
#[derive(Default)]
pub struct DistHashIdentityLookup {
    started: Mutex<Option<(Pid, [Subscription; 2])>>,
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
        let releases = Arc::new(activator::Releases::default());
        let pid = system
            .root()
            .spawn_named(
                &activator::props(node, releases.clone()),
                PARTITION_ACTIVATOR,
            )
            .map_err(|e| ClusterError::Spawn(e.to_string()))?;
        let released = system
            .event_stream()
            .subscribe_to::<ActivationTerminated, _>(move |t| releases.record(t));
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
        *started = Some((pid, [sub, released]));
        Ok(())
    }

    fn get(&self, node: &LookupContext, ci: &ClusterIdentity, timeout: Duration) -> LookupFuture {
        let (node, ci) = (node.clone(), ci.clone());
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let ml = node.member_list().clone();
            // A refusal from an owner whose view differs is followed by a wait for this
            // node's view to change, then one more try at once (a few times at most).
            let mut refusals = 0;
            loop {
                let Some(Answer { owner, view, resp }) =
                    ask_owner(&node, &ci, deadline, timeout).await?
                else {
                    continue;
                };
                match resp {
                    ActivationResponse {
                        pid: Some(pid),
                        failed: false,
                        ..
                    } => return Ok(ml.topology().pid_at_member(&pid)),
                    ActivationResponse { topology_hash, .. }
                        if topology_hash != 0 && topology_hash != view && refusals < 3 =>
                    {
                        // The owner's view differs from ours: ours is the one behind unless
                        // it changes soon; retry as soon as it does.
                        refusals += 1;
                        let wait = deadline
                            .saturating_duration_since(tokio::time::Instant::now())
                            .min(node.timings().stale_view_wait);
                        ml.wait_until(wait, |t| t.hash() != view).await;
                    }
                    _ => return Err(ClusterError::ActivationFailed { owner }),
                }
            }
        })
    }

    fn shutdown(&self, node: &LookupContext, graceful: bool) -> ShutdownFuture {
        let Some((pid, subs)) = self.started.lock().take() else {
            return Box::pin(async {});
        };
        let system = node.system().clone();
        for sub in &subs {
            system.event_stream().unsubscribe(sub);
        }
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

/// The owner's answer to one activation request, with the owner and the hash of the view
/// that chose it.
pub(crate) struct Answer {
    pub(crate) owner: String,
    pub(crate) view: u64,
    pub(crate) resp: ActivationResponse,
}

/// Asks the owner of `ci` in this node's current view for its activation, by `deadline`.
/// `Ok(None)`: the owner left this view meanwhile (or was shutting down and left): ask the
/// new one at once.
pub(crate) async fn ask_owner(
    node: &LookupContext,
    ci: &ClusterIdentity,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Result<Option<Answer>, ClusterError> {
    let timed_out = || ClusterError::Timeout {
        identity: ci.to_string(),
        message: "",
        after: timeout,
    };
    let ml = node.member_list();
    let view = ml.topology();
    let Some(owner) = view.owner(&ci.kind, &ci.identity).map(str::to_owned) else {
        return Err(ClusterError::NoOwner {
            kind: ci.kind.clone(),
            members: view.len(),
        });
    };
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    if remaining.is_zero() {
        return Err(timed_out());
    }
    // The view's hash goes along, so the owner can tell whose view is behind.
    let request = ActivationRequest {
        cluster_identity: Some(ci.clone()),
        request_id: String::new(),
        topology_hash: view.hash(),
    };
    let target = Pid::new(owner.as_str(), PARTITION_ACTIVATOR);
    let fut = node
        .system()
        .root()
        .request_future(&target, request, remaining);
    let reply = match ml.until_gone(&owner, fut).await {
        None => return Ok(None),
        Some(r) => r,
    };
    match reply {
        Ok(msg) => match msg.downcast_ref::<ActivationResponse>() {
            Some(r) => Ok(Some(Answer {
                owner,
                view: view.hash(),
                resp: r.clone(),
            })),
            None => Err(ClusterError::UnexpectedResponse {
                expected: "cluster.ActivationResponse",
                actual: msg.type_name(),
            }),
        },
        Err(FutureError::DeadLetter { .. }) => {
            // No placement actor there: the member is shutting down. Wait for it to leave
            // this view (briefly) rather than asking it again and again.
            let wait = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .min(node.timings().stale_view_wait);
            if ml.wait_until(wait, |t| !t.contains_address(&owner)).await {
                return Ok(None);
            }
            Err(ClusterError::DeadLetter)
        }
        Err(FutureError::Timeout { .. }) => Err(timed_out()),
        Err(e) => Err(ClusterError::Future(e)),
    }
}
