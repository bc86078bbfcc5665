//! Loopback ports for listeners that a child process binds later.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};

const FIRST: u16 = 12_000;
/// Ports are taken from `FIRST..FIRST + SPAN`, below the kernel's ephemeral range (32768 and
/// up on Linux), so that no outgoing connection of the busy machine takes one between this
/// check and the child's bind.
const SPAN: u16 = 20_000;

/// A loopback port free right now, for a listener a child binds later. Different test
/// binaries run at once: each starts at a different point (its process id) and steps
/// through the range, so two of them rarely pick the same port.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = (std::process::id() % u32::from(SPAN)) as u16;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = FIRST + (seed.wrapping_add(n.wrapping_mul(7))) % SPAN;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + SPAN)
}

/// Two consecutive free ports `p` and `p + 1` (etcd's client and peer ports); returns `p`.
pub fn free_port_pair() -> u16 {
    loop {
        let p = free_port();
        if p < u16::MAX && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_bindable_and_differ() {
        let (a, b) = (free_port(), free_port());
        assert_ne!(a, b);
        assert!((FIRST..FIRST + SPAN).contains(&a));
        TcpListener::bind(("127.0.0.1", a)).expect("free");
        let p = free_port_pair();
        TcpListener::bind(("127.0.0.1", p)).expect("free");
        TcpListener::bind(("127.0.0.1", p + 1)).expect("free");
    }
}
