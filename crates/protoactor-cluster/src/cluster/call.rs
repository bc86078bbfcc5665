//! Grain calls: resolve the PID (cache or identity lookup), send, and retry with backoff
//! what a later attempt may get right, until the call's attempts or deadline run out.

use protoactor::ContextOps;
use std::future::Future;
use std::time::{Duration, Instant};

use protoactor::{ActorSystem, BoxedMessage, FutureError, Message, Pid};

use super::Cluster;
use crate::error::ClusterError;
use crate::latency::short_type_name;
use crate::proto::{ClusterIdentity, GrainErrorResponse};
use protoactor_remote::UndecodableMessage;

/// Options of one grain call.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// The overall deadline, retries included (`None`: the config's `request_timeout`).
    pub timeout: Option<Duration>,
    /// The longest one attempt waits: for the grain's reply before the PID is evicted and the
    /// call retried, and for an activation round trip (`None`: until the overall deadline).
    /// A shorter value lets a call get past a member that died without a trace before the
    /// provider drops it (once the caller's view drops a member, calls waiting on it are
    /// re-resolved at once anyway).
    pub attempt_timeout: Option<Duration>,
    /// The most attempts (lookups and requests that fail with a dead letter or a timeout,
    /// or find no owner); at least 1. Default 10.
    pub max_attempts: u32,
    /// The pause after the first failed attempt; it doubles after each one, up to
    /// `max_backoff`. Default 20 ms.
    pub backoff: Duration,
    /// The longest pause between attempts. Default 500 ms.
    pub max_backoff: Duration,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            timeout: None,
            attempt_timeout: None,
            max_attempts: 10,
            backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(500),
        }
    }
}

impl CallOptions {
    /// Sets the overall deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// Sets the longest wait of one request attempt.
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }
    /// Sets the most attempts.
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
    /// Sets the first pause between attempts and the longest.
    pub fn with_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = first;
        self.max_backoff = max.max(first);
        self
    }
    fn pause(&self, failed_attempts: u32) -> Duration {
        let factor = 1u32 << failed_attempts.saturating_sub(1).min(16);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

impl Cluster {
    /// The PID of grain `ci`: from the cache, or activated by its owner. Retries (with the
    /// default [`CallOptions`]) while no owner is known or the owner cannot be reached, up
    /// to the config's request timeout.
    pub fn get(
        &self,
        ci: &ClusterIdentity,
    ) -> impl Future<Output = Result<Pid, ClusterError>> + Send + 'static {
        let (c, ci) = (self.clone(), ci.clone());
        async move {
            let opts = CallOptions::default();
            let deadline = Instant::now() + c.0.config.request_timeout;
            let mut attempts = 0;
            c.resolve(&ci, deadline, &opts, &mut attempts).await
        }
    }

    /// [`Cluster::get`], blocking the calling thread.
    pub fn get_blocking(&self, ci: &ClusterIdentity) -> Result<Pid, ClusterError> {
        block_on(self.system(), self.get(ci))
    }

    /// Sends `msg` to grain `identity` of `kind` and waits for its reply: resolves the PID
    /// (cache or activation), sends, and on a dead letter or a timeout evicts the PID and
    /// tries again, until `opts`' attempts or deadline run out. The reply may be a
    /// [`GrainErrorResponse`]; [`Cluster::request_as`] turns that into an error.
    pub fn request<M: Message + Clone>(
        &self,
        identity: impl Into<String>,
        kind: impl Into<String>,
        msg: M,
        opts: &CallOptions,
    ) -> impl Future<Output = Result<BoxedMessage, ClusterError>> + Send + 'static {
        // The message's short name is made only when a latency is recorded.
        self.request_method(identity, kind, msg, opts, None)
    }

    /// [`Cluster::request`] whose latency is recorded under `method` (a typed grain's
    /// method name instead of its `GrainRequest` wire message; `None`: the message type's
    /// short name).
    pub(crate) fn request_method<M: Message + Clone>(
        &self,
        identity: impl Into<String>,
        kind: impl Into<String>,
        msg: M,
        opts: &CallOptions,
        method: Option<&'static str>,
    ) -> impl Future<Output = Result<BoxedMessage, ClusterError>> + Send + 'static {
        let (c, opts) = (self.clone(), opts.clone());
        let ci = ClusterIdentity::new(identity, kind);
        async move {
            if !c.0.latencies.enabled() {
                return c.request_inner(ci, msg, opts).await;
            }
            let started = Instant::now();
            let r = c.request_inner(ci.clone(), msg, opts).await;
            let method = method.unwrap_or_else(|| short_type_name(std::any::type_name::<M>()));
            c.0.latencies
                .record(&ci.kind, method, started.elapsed(), r.is_ok());
            r
        }
    }

    /// [`Cluster::request`] with the reply downcast to `R`: a [`GrainErrorResponse`] reply is
    /// `Err(ClusterError::Grain)`, another type `Err(ClusterError::UnexpectedResponse)`.
    pub fn request_as<R: Message, M: Message + Clone>(
        &self,
        identity: impl Into<String>,
        kind: impl Into<String>,
        msg: M,
        opts: &CallOptions,
    ) -> impl Future<Output = Result<R, ClusterError>> + Send + 'static {
        let fut = self.request(identity, kind, msg, opts);
        async move { downcast_reply::<R>(fut.await?) }
    }

    /// [`Cluster::request_as`] recorded under `method` (see [`Cluster::request_method`]).
    pub(crate) fn request_method_as<R: Message, M: Message + Clone>(
        &self,
        identity: impl Into<String>,
        kind: impl Into<String>,
        msg: M,
        opts: &CallOptions,
        method: &'static str,
    ) -> impl Future<Output = Result<R, ClusterError>> + Send + 'static {
        let fut = self.request_method(identity, kind, msg, opts, Some(method));
        async move { downcast_reply::<R>(fut.await?) }
    }

    /// [`Cluster::request`], blocking the calling thread (from a plain thread, or from an
    /// actor of a multi-threaded runtime; inside a grain prefer `request` with
    /// `ctx.reenter_after`).
    pub fn request_blocking<M: Message + Clone>(
        &self,
        identity: impl Into<String>,
        kind: impl Into<String>,
        msg: M,
        opts: &CallOptions,
    ) -> Result<BoxedMessage, ClusterError> {
        block_on(self.system(), self.request(identity, kind, msg, opts))
    }

    /// [`Cluster::request_as`], blocking the calling thread.
    pub fn request_blocking_as<R: Message, M: Message + Clone>(
        &self,
        identity: impl Into<String>,
        kind: impl Into<String>,
        msg: M,
        opts: &CallOptions,
    ) -> Result<R, ClusterError> {
        block_on(
            self.system(),
            self.request_as::<R, M>(identity, kind, msg, opts),
        )
    }

    async fn request_inner<M: Message + Clone>(
        &self,
        ci: ClusterIdentity,
        msg: M,
        opts: CallOptions,
    ) -> Result<BoxedMessage, ClusterError> {
        ci.validate()?;
        let timeout = opts.timeout.unwrap_or(self.0.config.request_timeout);
        let deadline = Instant::now() + timeout;
        let mut attempts = 0u32;
        let message = std::any::type_name::<M>();
        let timed_out = |after| ClusterError::Timeout {
            identity: ci.to_string(),
            message,
            after,
        };
        loop {
            let pid = self.resolve(&ci, deadline, &opts, &mut attempts).await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(timed_out(timeout));
            }
            let wait = opts.attempt_timeout.map_or(remaining, |t| t.min(remaining));
            let root = self.system().root();
            let outcome = if pid.address() == self.address() {
                // Sent by the await: an idle local grain's turn runs in this task.
                Some(root.request_async(&pid, msg.clone(), wait).await)
            } else {
                let fut = root.request_future(&pid, msg.clone(), wait);
                self.member_list().until_gone(pid.address(), fut).await
            };
            let err = match outcome {
                Some(Ok(reply)) => return Ok(reply),
                Some(Err(FutureError::DeadLetter { .. })) => ClusterError::DeadLetter,
                Some(Err(FutureError::Timeout { .. })) => timed_out(wait),
                Some(Err(e)) => return Err(ClusterError::Future(e)),
                None => {
                    // Its member left this view: the identity has a new owner; ask it at once.
                    self.0.pid_cache.remove_if(&ci, &pid);
                    attempts += 1;
                    tracing::debug!(identity = %ci, %pid, attempts, "grain's member left; re-resolving");
                    if attempts >= opts.max_attempts.max(1) {
                        return Err(ClusterError::RetriesExhausted {
                            identity: ci.to_string(),
                            attempts,
                            last: Box::new(ClusterError::DeadLetter),
                        });
                    }
                    continue;
                }
            };
            // The activation is gone or unreachable: forget it and find the current one.
            self.0.pid_cache.remove_if(&ci, &pid);
            attempts += 1;
            tracing::debug!(identity = %ci, %pid, error = %err, attempts, "grain request failed");
            self.pause_before_retry(&ci, err, deadline, &opts, attempts, Some(pid.address()))
                .await?;
        }
    }

    /// Finds the PID of `ci`, retrying lookups that may succeed later.
    async fn resolve(
        &self,
        ci: &ClusterIdentity,
        deadline: Instant,
        opts: &CallOptions,
        attempts: &mut u32,
    ) -> Result<Pid, ClusterError> {
        loop {
            if self.is_shut_down() || self.system().is_shut_down() {
                return Err(ClusterError::ShutDown);
            }
            if let Some(pid) = self.0.pid_cache.get(ci) {
                return Ok(pid);
            }
            if let Some(reason) = self.member_list().provider_not_connected() {
                return Err(ClusterError::ProviderNotConnected { reason });
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ClusterError::Timeout {
                    identity: ci.to_string(),
                    message: "",
                    after: opts.timeout.unwrap_or(self.0.config.request_timeout),
                });
            }
            // An attempt's bound covers the activation round trip too.
            let timeout = remaining
                .min(self.0.config.activation_timeout)
                .min(opts.attempt_timeout.unwrap_or(remaining));
            let err = match self
                .0
                .config
                .identity_lookup
                .get(&self.0.node, ci, timeout)
                .await
            {
                Ok(pid) => {
                    self.0.pid_cache.set(ci.clone(), pid.clone());
                    return Ok(pid);
                }
                Err(e) if e.is_retryable() => e,
                Err(e) => return Err(e),
            };
            *attempts += 1;
            tracing::debug!(identity = %ci, error = %err, attempts = *attempts, "grain lookup failed");
            self.pause_before_retry(ci, err, deadline, opts, *attempts, None)
                .await?;
        }
    }

    /// Sleeps before the next attempt, or gives up with the right error.
    /// The pause ends early when `member` (the address the failed attempt went to) leaves
    /// this node's view: the identity's new owner is asked at once.
    async fn pause_before_retry(
        &self,
        ci: &ClusterIdentity,
        err: ClusterError,
        deadline: Instant,
        opts: &CallOptions,
        attempts: u32,
        member: Option<&str>,
    ) -> Result<(), ClusterError> {
        if attempts >= opts.max_attempts.max(1) {
            return Err(ClusterError::RetriesExhausted {
                identity: ci.to_string(),
                attempts,
                last: Box::new(err),
            });
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(if matches!(err, ClusterError::Timeout { .. }) {
                err
            } else {
                ClusterError::RetriesExhausted {
                    identity: ci.to_string(),
                    attempts,
                    last: Box::new(err),
                }
            });
        }
        let pause = opts.pause(attempts).min(remaining);
        match member.filter(|m| *m != self.address()) {
            Some(m) => {
                let _ = self
                    .member_list()
                    .until_gone(m, sleep(self.system(), pause))
                    .await;
            }
            None => sleep(self.system(), pause).await,
        }
        Ok(())
    }
}

fn downcast_reply<R: Message>(reply: BoxedMessage) -> Result<R, ClusterError> {
    match protoactor::message::downcast_message::<R>(reply) {
        Ok(r) => Ok(*r),
        Err(other) => match protoactor::message::downcast_message::<GrainErrorResponse>(other) {
            Ok(e) => Err(ClusterError::Grain(*e)),
            Err(other) if other.is::<UndecodableMessage>() => {
                let u = other.downcast_ref::<UndecodableMessage>().expect("checked");
                Err(ClusterError::UndecodableReply {
                    type_name: u.type_name.to_string(),
                    error: u.error.to_string(),
                })
            }
            Err(other) => Err(ClusterError::UnexpectedResponse {
                expected: std::any::type_name::<R>(),
                actual: other.type_name(),
            }),
        },
    }
}

/// Sleeps on the system's runtime, so callers need no tokio context of their own.
async fn sleep(system: &ActorSystem, d: Duration) {
    if d.is_zero() {
        return;
    }
    let _ = system.runtime().spawn(tokio::time::sleep(d)).await;
}

/// Runs `fut` to completion from synchronous code.
pub(crate) fn block_on<T: Send + 'static>(
    system: &ActorSystem,
    fut: impl Future<Output = Result<T, ClusterError>> + Send + 'static,
) -> Result<T, ClusterError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Err(_) => system.runtime().block_on(fut),
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            protoactor::dispatcher::before_blocking();
            tokio::task::block_in_place(|| system.runtime().block_on(fut))
        }
        Ok(_) => {
            // A current-thread runtime cannot lend its thread: run on the system's runtime.
            let (tx, rx) = std::sync::mpsc::channel();
            system.runtime().spawn(async move {
                let _ = tx.send(fut.await);
            });
            rx.recv().unwrap_or(Err(ClusterError::ShutDown))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let o = CallOptions::default()
            .with_backoff(Duration::from_millis(10), Duration::from_millis(50));
        let pauses: Vec<u128> = (1..=5).map(|n| o.pause(n).as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 50, 50]);
    }

    #[test]
    fn replies_downcast_or_become_errors() {
        let ok: BoxedMessage = Box::new(String::from("hi"));
        assert_eq!(downcast_reply::<String>(ok).unwrap(), "hi");
        let grain: BoxedMessage = Box::new(GrainErrorResponse::new("NOT_FOUND", "x"));
        assert!(matches!(
            downcast_reply::<String>(grain),
            Err(ClusterError::Grain(e)) if e.reason == "NOT_FOUND"
        ));
        let undecodable: BoxedMessage = Box::new(UndecodableMessage {
            type_name: "shared.HelloResponse".into(),
            serializer_id: 0,
            data: Default::default(),
            error: "no message type is registered under this type name for serializer 0".into(),
        });
        assert_eq!(
            downcast_reply::<String>(undecodable)
                .unwrap_err()
                .to_string(),
            "the reply of type \"shared.HelloResponse\" could not be decoded here: no message \
             type is registered under this type name for serializer 0 (register the reply type \
             on this node's remote serialization)"
        );
        let other: BoxedMessage = Box::new(5u8);
        assert!(matches!(
            downcast_reply::<String>(other),
            Err(ClusterError::UnexpectedResponse { actual: "u8", .. })
        ));
    }
}
