//! Failures: why an actor failed, its failure history, and the failure report a child sends
//! its supervisor. Plain data, below everything that supervises (see `supervision`).

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::pid::Pid;

/// Why an actor failed: the panic payload (or an error given to
/// [`Context::fail`](crate::Context::fail)), with its text.
#[derive(Clone)]
pub struct FailureReason {
    text: Arc<str>,
    payload: Arc<Mutex<Option<Box<dyn Any + Send>>>>,
}

impl FailureReason {
    /// A reason with a text only.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: Arc::from(text.into()),
            payload: Arc::new(Mutex::new(None)),
        }
    }

    /// A reason carrying a typed value (deciders can test it with [`FailureReason::is`]).
    pub fn from_value<T: Any + Send + fmt::Display>(value: T) -> Self {
        Self {
            text: Arc::from(value.to_string()),
            payload: Arc::new(Mutex::new(Some(Box::new(value)))),
        }
    }

    /// A reason from a caught panic.
    pub fn from_panic(payload: Box<dyn Any + Send>) -> Self {
        let text = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else if let Some(r) = payload.downcast_ref::<FailureReason>() {
            return r.clone();
        } else {
            "actor panicked with a non-string payload".to_string()
        };
        Self {
            text: Arc::from(text),
            payload: Arc::new(Mutex::new(Some(payload))),
        }
    }

    /// The failure's text.
    pub fn message(&self) -> &str {
        &self.text
    }

    /// True if the payload is a `T` (e.g. `std::panic::panic_any(MyError)`).
    pub fn is<T: Any>(&self) -> bool {
        self.payload.lock().as_ref().is_some_and(|p| p.is::<T>())
    }

    /// Reads the payload as a `T`.
    pub fn with_payload<T: Any, R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.payload
            .lock()
            .as_ref()
            .and_then(|p| p.downcast_ref::<T>())
            .map(f)
    }
}

impl fmt::Debug for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailureReason({:?})", self.text)
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Failure times of one actor, shared between it and its supervisor.
#[derive(Clone, Default)]
pub struct RestartStatistics(Arc<Mutex<Vec<Instant>>>);

impl RestartStatistics {
    /// Empty statistics.
    pub fn new() -> Self {
        Self::default()
    }
    /// Records a failure now.
    pub fn fail(&self) {
        self.0.lock().push(Instant::now());
    }
    /// Forgets all failures.
    pub fn reset(&self) {
        self.0.lock().clear();
    }
    /// All failures ever recorded (since the last reset).
    pub fn failure_count(&self) -> usize {
        self.0.lock().len()
    }
    /// Failures within `within` of now; `Duration::ZERO` counts every failure.
    pub fn number_of_failures(&self, within: Duration) -> usize {
        let v = self.0.lock();
        if within.is_zero() {
            return v.len();
        }
        let now = Instant::now();
        v.iter()
            .filter(|t| now.duration_since(**t) < within)
            .count()
    }
}

impl fmt::Debug for RestartStatistics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RestartStatistics({} failures)", self.failure_count())
    }
}

/// A child's failure, sent to its supervisor.
pub struct Failure {
    /// The failed actor.
    pub who: Pid,
    /// Why it failed.
    pub reason: FailureReason,
    /// Its failure history.
    pub restart_stats: RestartStatistics,
    /// The type of the message being processed, if any.
    pub message_type: Option<&'static str>,
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("who", &self.who)
            .field("reason", &self.reason)
            .field("message_type", &self.message_type)
            .finish()
    }
}
