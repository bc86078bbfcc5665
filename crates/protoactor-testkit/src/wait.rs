//! Waiting for an observable condition with a deadline: for conditions nothing announces
//! (a key in etcd, a file, a process's exit), polled every 20 ms. The deadline only bounds a
//! failing test; no test asserts on how long the wait took.

use std::time::{Duration, Instant};

/// How often the condition is checked.
pub const POLL: Duration = Duration::from_millis(20);

/// Calls `f` until it returns `Some`, and returns that; panics naming `what` when `timeout`
/// passes first.
pub fn poll_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {timeout:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// True once `f` returns true, false when `timeout` passes first.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_reports_success_and_timeout() {
        let mut n = 0;
        assert!(wait_until(Duration::from_secs(5), || {
            n += 1;
            n == 3
        }));
        assert!(!wait_until(Duration::from_millis(50), || false));
    }

    #[test]
    #[should_panic(expected = "never: not reached")]
    fn poll_until_panics_at_the_deadline() {
        poll_until::<()>("never", Duration::from_millis(50), || None);
    }
}
