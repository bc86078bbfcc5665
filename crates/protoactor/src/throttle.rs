//! A throttle for noisy logs (dead letters): lets `max` events through per interval, then
//! reports how many it held back.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// What the throttle says about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Valve {
    /// Let it through.
    Open,
    /// Let it through; it is the last one this interval.
    Closing,
    /// Hold it back.
    Closed,
}

/// Counts events per interval.
#[derive(Debug)]
pub struct Throttle {
    max: u32,
    interval: Duration,
    count: AtomicU32,
    window: Mutex<Instant>,
}

impl Throttle {
    /// At most `max` events per `interval`.
    pub fn new(max: u32, interval: Duration) -> Self {
        Self {
            max,
            interval,
            count: AtomicU32::new(0),
            window: Mutex::new(Instant::now()),
        }
    }

    /// Records an event; returns whether to let it through and, when a new interval began,
    /// how many events the previous one held back.
    pub fn should_throttle(&self) -> (Valve, u32) {
        let mut dropped = 0;
        {
            let mut w = self.window.lock();
            if w.elapsed() >= self.interval {
                *w = Instant::now();
                let prev = self.count.swap(0, Ordering::Relaxed);
                dropped = prev.saturating_sub(self.max);
            }
        }
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let valve = if n < self.max {
            Valve::Open
        } else if n == self.max {
            Valve::Closing
        } else {
            Valve::Closed
        };
        (valve, dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_max_through_then_closes() {
        let t = Throttle::new(3, Duration::from_secs(60));
        assert_eq!(t.should_throttle().0, Valve::Open);
        assert_eq!(t.should_throttle().0, Valve::Open);
        assert_eq!(t.should_throttle().0, Valve::Closing);
        assert_eq!(t.should_throttle().0, Valve::Closed);
    }

    #[test]
    fn reopens_after_the_interval_and_reports_held_back_events() {
        let t = Throttle::new(1, Duration::from_millis(1));
        t.should_throttle();
        t.should_throttle();
        t.should_throttle();
        std::thread::sleep(Duration::from_millis(5));
        let (v, dropped) = t.should_throttle();
        assert_eq!(v, Valve::Closing);
        assert_eq!(dropped, 2);
    }
}
