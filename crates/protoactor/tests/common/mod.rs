//! Shared test helpers: a probe that records what actors see, and waiting helpers.
#![allow(dead_code)]

use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

/// How long a test waits for something that must happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// A cloneable recorder: actors push events, the test reads them in order.
#[derive(Clone)]
pub struct Probe<T> {
    tx: Sender<T>,
}

/// The reading side of a [`Probe`].
pub struct ProbeRx<T> {
    rx: Receiver<T>,
}

/// A new probe and its reader.
pub fn probe<T>() -> (Probe<T>, ProbeRx<T>) {
    let (tx, rx) = channel();
    (Probe { tx }, ProbeRx { rx })
}

impl<T> Probe<T> {
    /// Records an event (ignored if the test stopped reading).
    pub fn push(&self, v: T) {
        let _ = self.tx.send(v);
    }
}

impl<T: std::fmt::Debug> ProbeRx<T> {
    /// The next event; panics after [`WAIT`].
    pub fn next(&self) -> T {
        self.rx
            .recv_timeout(WAIT)
            .expect("expected an event within the wait time")
    }
    /// The next event if one arrives within `d`.
    pub fn try_next(&self, d: Duration) -> Option<T> {
        self.rx.recv_timeout(d).ok()
    }
    /// The next `n` events.
    pub fn take(&self, n: usize) -> Vec<T> {
        (0..n).map(|_| self.next()).collect()
    }
    /// Asserts nothing more arrives within `d`.
    pub fn assert_quiet(&self, d: Duration) {
        if let Ok(v) = self.rx.recv_timeout(d) {
            panic!("expected no more events, got {v:?}");
        }
    }
    /// All events up to and including the first one matching `f`.
    pub fn collect_until(&self, mut f: impl FnMut(&T) -> bool) -> Vec<T> {
        let mut out = Vec::new();
        loop {
            let v = self.next();
            let done = f(&v);
            out.push(v);
            if done {
                return out;
            }
        }
    }
    /// Waits for an event matching `f`, skipping others.
    pub fn until(&self, f: impl Fn(&T) -> bool) -> T {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) if f(&v) => return v,
                Ok(_) => continue,
                Err(_) => panic!("expected a matching event within the wait time"),
            }
        }
    }
}

/// An actor system on a multi-threaded tokio runtime of `workers` threads (the runtime is
/// returned so the test can inspect it and keeps it alive).
pub fn system_on_workers(workers: usize) -> (tokio::runtime::Runtime, protoactor::ActorSystem) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    let system = protoactor::ActorSystem::with_config(
        protoactor::Config::default().with_runtime(rt.handle().clone()),
    );
    (rt, system)
}
