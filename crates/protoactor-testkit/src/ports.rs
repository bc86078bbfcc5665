//! Loopback ports for listeners that a child process binds later.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::OnceLock;

use parking_lot::Mutex;

const FIRST: u16 = 12_000;
/// Ports are taken from `FIRST..FIRST + SPAN`, below the kernel's ephemeral range (32768 and
/// up on Linux), so that no outgoing connection of the busy machine takes one between this
/// check and the child's bind.
const SPAN: u16 = 20_000;

/// Ports this process has handed out (pairs included): never handed out twice, so two
/// tests of one binary cannot pick the same port, nor one test a port another test's etcd
/// takes as its peer port (`p + 1` of a pair).
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    HANDED_OUT.get_or_init(Default::default)
}

/// A loopback port free right now, for a listener a child binds later. Different test
/// binaries run at once: each starts at a different point (its process id) and steps
/// through the range, so two of them rarely pick the same port; one process never hands
/// out a port twice.
pub fn free_port() -> u16 {
    take(1)
}

/// Two consecutive free ports `p` and `p + 1` (etcd's client and peer ports); returns `p`.
pub fn free_port_pair() -> u16 {
    take(2)
}

/// `n` consecutive ports, free right now and never handed out by this process; returns the
/// first.
fn take(n: u16) -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = (std::process::id() % u32::from(SPAN)) as u16;
    let mut given = handed_out().lock();
    for _ in 0..SPAN {
        let i = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = FIRST + (seed.wrapping_add(i.wrapping_mul(7))) % (SPAN - n);
        let ports = port..port + n;
        if ports.clone().any(|p| given.contains(&p)) {
            continue;
        }
        if ports
            .clone()
            .all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok())
        {
            given.extend(ports);
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + SPAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_bindable_and_differ() {
        let (a, b) = (free_port(), free_port());
        assert_ne!(a, b);
        let p = free_port_pair();
        assert!(
            ![a, b].contains(&p) && ![a, b].contains(&(p + 1)),
            "handed out twice"
        );
        for port in [a, b, p, p + 1] {
            assert!((FIRST..FIRST + SPAN).contains(&port), "{port} out of range");
        }
        // (Each was bindable when handed out; binding again here raced with the other
        // tests of this binary on a loaded machine, so it is not asserted.)
    }
}
