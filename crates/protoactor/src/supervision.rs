//! Supervision: failures, directives, restart statistics and strategies.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

pub use crate::failure::{Failure, FailureReason, RestartStatistics};
use crate::message::Message;
use crate::pid::Pid;
use crate::process::SystemMessage;
use crate::system::ActorSystem;

/// What a supervisor does with a failed child (values match protoactor-go).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Directive {
    /// Keep the actor and its state; go on with the next message.
    Resume = 0,
    /// Replace the actor with a fresh instance.
    Restart = 1,
    /// Stop the actor.
    Stop = 2,
    /// Fail the supervisor itself, passing the failure up.
    Escalate = 3,
}

/// Published on the event stream for every supervision decision (an escalation is not a
/// decision: only the supervisor that finally decides publishes one), and with
/// [`Directive::Stop`] for a failure while an actor is stopping (the stop goes on).
#[derive(Debug, Clone)]
pub struct SupervisorEvent {
    /// The failed child.
    pub child: Pid,
    /// Why it failed.
    pub reason: FailureReason,
    /// What was decided.
    pub directive: Directive,
}

/// The side of an actor (or guardian) that supervises children.
pub trait Supervisor {
    /// The supervised children.
    fn children(&self) -> Vec<Pid>;
    /// Fails the supervisor itself with the child's reason.
    fn escalate_failure(&self, reason: FailureReason, message_type: Option<&'static str>);
    /// Restarts these children.
    fn restart_children(&self, pids: &[Pid]);
    /// Stops these children.
    fn stop_children(&self, pids: &[Pid]);
    /// Resumes these children.
    fn resume_children(&self, pids: &[Pid]);
}

/// Decides what happens to a failed child.
pub trait SupervisorStrategy: Send + Sync + 'static {
    /// Handles `child`'s failure.
    fn handle_failure(
        &self,
        system: &ActorSystem,
        supervisor: &dyn Supervisor,
        child: &Pid,
        stats: &RestartStatistics,
        reason: &FailureReason,
        message_type: Option<&'static str>,
    );
}

/// Picks a directive from a failure reason.
pub type Decider = Arc<dyn Fn(&FailureReason) -> Directive + Send + Sync>;

/// The default decider: always restart.
pub fn default_decider() -> Decider {
    Arc::new(|_| Directive::Restart)
}

pub(crate) fn log_failure(
    system: &ActorSystem,
    child: &Pid,
    reason: &FailureReason,
    directive: Directive,
) {
    if system.config().developer_supervision_logging {
        tracing::error!(child = %child, reason = %reason, ?directive, "[Supervision] actor failed");
    } else {
        tracing::debug!(child = %child, reason = %reason, ?directive, "[Supervision] actor failed");
    }
    system.event_stream().publish(&SupervisorEvent {
        child: child.clone(),
        reason: reason.clone(),
        directive,
    });
}

/// Restarts, stops, resumes or escalates only the failed child.
#[derive(Clone)]
pub struct OneForOneStrategy {
    max_retries: u32,
    within: Duration,
    decider: Decider,
}

impl std::fmt::Debug for OneForOneStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneForOneStrategy")
            .field("max_retries", &self.max_retries)
            .field("within", &self.within)
            .finish_non_exhaustive()
    }
}

impl OneForOneStrategy {
    /// At most `max_retries` restarts `within` a window (`Duration::ZERO` = ever); then stop.
    pub fn new(max_retries: u32, within: Duration) -> Self {
        Self {
            max_retries,
            within,
            decider: default_decider(),
        }
    }
    /// Uses `decider` to choose the directive.
    pub fn with_decider<F>(mut self, decider: F) -> Self
    where
        F: Fn(&FailureReason) -> Directive + Send + Sync + 'static,
    {
        self.decider = Arc::new(decider);
        self
    }
}

/// protoactor-go's rule: with `max == 0` always stop; otherwise record the failure and stop
/// (after resetting) once the failures within the window exceed `max`.
fn should_stop(max: u32, within: Duration, stats: &RestartStatistics) -> bool {
    if max == 0 {
        return true;
    }
    stats.fail();
    if stats.number_of_failures(within) > max as usize {
        stats.reset();
        return true;
    }
    false
}

/// One failure as a strategy sees it.
struct Failed<'a> {
    child: &'a Pid,
    stats: &'a RestartStatistics,
    reason: &'a FailureReason,
    message_type: Option<&'static str>,
}

/// The decision shared by one-for-one and all-for-one: a restart or stop applies to
/// `targets`, a resume to the failed child only.
fn apply(
    system: &ActorSystem,
    supervisor: &dyn Supervisor,
    failed: Failed<'_>,
    targets: &[Pid],
    decider: &Decider,
    (max, within): (u32, Duration),
) {
    let Failed {
        child,
        stats,
        reason,
        message_type,
    } = failed;
    let directive = decider(reason);
    match directive {
        Directive::Resume => {
            log_failure(system, child, reason, directive);
            supervisor.resume_children(std::slice::from_ref(child));
        }
        Directive::Restart => {
            if should_stop(max, within, stats) {
                log_failure(system, child, reason, Directive::Stop);
                supervisor.stop_children(targets);
            } else {
                log_failure(system, child, reason, Directive::Restart);
                supervisor.restart_children(targets);
            }
        }
        Directive::Stop => {
            log_failure(system, child, reason, directive);
            supervisor.stop_children(targets);
        }
        Directive::Escalate => {
            // as in protoactor-go: no event here, the supervisor that decides publishes it
            supervisor.escalate_failure(reason.clone(), message_type);
        }
    }
}

impl SupervisorStrategy for OneForOneStrategy {
    fn handle_failure(
        &self,
        system: &ActorSystem,
        supervisor: &dyn Supervisor,
        child: &Pid,
        stats: &RestartStatistics,
        reason: &FailureReason,
        message_type: Option<&'static str>,
    ) {
        apply(
            system,
            supervisor,
            Failed {
                child,
                stats,
                reason,
                message_type,
            },
            std::slice::from_ref(child),
            &self.decider,
            (self.max_retries, self.within),
        );
    }
}

/// Like [`OneForOneStrategy`], but a restart or stop applies to all the supervisor's children
/// (resume only to the failed one).
#[derive(Clone)]
pub struct AllForOneStrategy {
    max_retries: u32,
    within: Duration,
    decider: Decider,
}

impl std::fmt::Debug for AllForOneStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AllForOneStrategy")
            .field("max_retries", &self.max_retries)
            .field("within", &self.within)
            .finish_non_exhaustive()
    }
}

impl AllForOneStrategy {
    /// At most `max_retries` restarts `within` a window; then stop all.
    pub fn new(max_retries: u32, within: Duration) -> Self {
        Self {
            max_retries,
            within,
            decider: default_decider(),
        }
    }
    /// Uses `decider` to choose the directive.
    pub fn with_decider<F>(mut self, decider: F) -> Self
    where
        F: Fn(&FailureReason) -> Directive + Send + Sync + 'static,
    {
        self.decider = Arc::new(decider);
        self
    }
}

impl SupervisorStrategy for AllForOneStrategy {
    fn handle_failure(
        &self,
        system: &ActorSystem,
        supervisor: &dyn Supervisor,
        child: &Pid,
        stats: &RestartStatistics,
        reason: &FailureReason,
        message_type: Option<&'static str>,
    ) {
        let all = supervisor.children();
        apply(
            system,
            supervisor,
            Failed {
                child,
                stats,
                reason,
                message_type,
            },
            &all,
            &self.decider,
            (self.max_retries, self.within),
        );
    }
}

/// Always restarts the failed child.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestartingStrategy;

impl SupervisorStrategy for RestartingStrategy {
    fn handle_failure(
        &self,
        system: &ActorSystem,
        supervisor: &dyn Supervisor,
        child: &Pid,
        _stats: &RestartStatistics,
        reason: &FailureReason,
        _message_type: Option<&'static str>,
    ) {
        log_failure(system, child, reason, Directive::Restart);
        supervisor.restart_children(std::slice::from_ref(child));
    }
}

/// Restarts after a delay that grows with each failure inside `backoff_window`:
/// `failures × initial_backoff` plus up to 500 ns of noise (protoactor-go's rule: linear,
/// and it never stops the child). No failure within the window resets the count.
#[derive(Debug, Clone, Copy)]
pub struct ExponentialBackoffStrategy {
    backoff_window: Duration,
    initial_backoff: Duration,
}

impl ExponentialBackoffStrategy {
    /// A backoff strategy.
    pub fn new(backoff_window: Duration, initial_backoff: Duration) -> Self {
        Self {
            backoff_window,
            initial_backoff,
        }
    }

    /// The delay before the next restart, recording this failure in `stats`.
    pub fn next_delay(&self, stats: &RestartStatistics) -> Duration {
        if stats.number_of_failures(self.backoff_window) == 0 {
            stats.reset();
        }
        stats.fail();
        let noise = rand::rng().random_range(0..500u64);
        self.initial_backoff * stats.failure_count() as u32 + Duration::from_nanos(noise)
    }
}

impl SupervisorStrategy for ExponentialBackoffStrategy {
    fn handle_failure(
        &self,
        system: &ActorSystem,
        _supervisor: &dyn Supervisor,
        child: &Pid,
        stats: &RestartStatistics,
        reason: &FailureReason,
        _message_type: Option<&'static str>,
    ) {
        let delay = self.next_delay(stats);
        let (system2, child, reason) = (system.clone(), child.clone(), reason.clone());
        system.runtime().spawn(async move {
            tokio::time::sleep(delay).await;
            log_failure(&system2, &child, &reason, Directive::Restart);
            child.send_system_message(&system2, SystemMessage::Restart);
        });
    }
}

/// The strategy used where none is given: `OneForOne(10, 10 s)`, always restarting, so the
/// 11th failure within 10 s stops the actor.
pub fn default_strategy() -> Arc<dyn SupervisorStrategy> {
    Arc::new(OneForOneStrategy::new(10, Duration::from_secs(10)))
}

#[allow(dead_code)]
fn _assert_message(_: &dyn Message) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_stop_follows_go_rules() {
        let s = RestartStatistics::new();
        assert!(should_stop(0, Duration::from_secs(1), &s));
        for _ in 0..3 {
            assert!(!should_stop(3, Duration::from_secs(10), &s));
        }
        assert!(should_stop(3, Duration::from_secs(10), &s));
        assert_eq!(s.failure_count(), 0, "stats reset after stopping");
    }

    #[test]
    fn zero_window_counts_every_failure() {
        let s = RestartStatistics::new();
        s.fail();
        s.fail();
        assert_eq!(s.number_of_failures(Duration::ZERO), 2);
        assert_eq!(s.number_of_failures(Duration::from_nanos(1)), 0);
    }

    #[test]
    fn backoff_grows_linearly_and_resets_outside_window() {
        let st =
            ExponentialBackoffStrategy::new(Duration::from_secs(60), Duration::from_millis(10));
        let s = RestartStatistics::new();
        let d1 = st.next_delay(&s);
        let d2 = st.next_delay(&s);
        let d3 = st.next_delay(&s);
        assert!(
            d1 >= Duration::from_millis(10)
                && d1 < Duration::from_millis(10) + Duration::from_nanos(500)
        );
        assert!(
            d2 >= Duration::from_millis(20)
                && d2 < Duration::from_millis(20) + Duration::from_nanos(500)
        );
        assert!(d3 >= Duration::from_millis(30));
        let short =
            ExponentialBackoffStrategy::new(Duration::from_nanos(1), Duration::from_millis(10));
        std::thread::sleep(Duration::from_millis(1));
        let d = short.next_delay(&s);
        assert!(
            d < Duration::from_millis(11),
            "window passed: count restarts at 1"
        );
    }

    #[test]
    fn panic_payloads_become_reasons() {
        let r = FailureReason::from_panic(Box::new("boom"));
        assert_eq!(r.message(), "boom");
        assert!(r.is::<&str>());
        #[derive(Debug)]
        struct MyErr;
        let r = FailureReason::from_panic(Box::new(MyErr));
        assert!(r.is::<MyErr>());
    }
}
