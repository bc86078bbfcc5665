//! What the machine's two cores give right now, for telling the `spawn` workload's slow
//! mode from the machine's (BENCHMARKS.md, "Issue 29 item 7: what picks spawn's slow mode"):
//!
//! - `ratio`: a fixed integer loop that shares no memory, timed on one thread alone and on
//!   two threads at once; about 1.0 when the two vCPUs give two cores' worth, towards 2 when
//!   they share one (another process, or the host's placement);
//! - `pingpong`: nanoseconds per round trip of one cache line between two spinning threads
//!   (the cost of handing a block from one worker to the other).
//!
//! ```text
//! cargo run --release -p protoactor-bench --example core_probe
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Milliseconds of a fixed loop of multiplications on this thread.
fn spin() -> f64 {
    let t = Instant::now();
    let mut x: u64 = 1;
    for i in 0..300_000_000u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(i ^ (x >> 7));
    }
    std::hint::black_box(x);
    t.elapsed().as_secs_f64() * 1000.0
}

/// Nanoseconds per round trip of one cache line between this thread and another.
fn ping_pong(round_trips: u64) -> f64 {
    let line = Arc::new(AtomicU64::new(0));
    let other = line.clone();
    let echo = std::thread::spawn(move || {
        for i in 0..round_trips {
            while other.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            other.store(2 * i + 2, Ordering::Release);
        }
    });
    let t = Instant::now();
    for i in 0..round_trips {
        line.store(2 * i + 1, Ordering::Release);
        while line.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / round_trips as f64;
    echo.join().expect("echo thread");
    ns
}

fn main() {
    let alone = spin();
    let both: Vec<f64> = (0..2)
        .map(|_| std::thread::spawn(spin))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("spin thread"))
        .collect();
    let ratio = (both[0] + both[1]) / 2.0 / alone;
    println!(
        "ratio {ratio:.2} (alone {alone:.0} ms, two at once {:.0} / {:.0} ms) pingpong {:.0} ns",
        both[0],
        both[1],
        ping_pong(300_000)
    );
}
