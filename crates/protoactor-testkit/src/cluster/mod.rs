//! Cluster scenarios (feature `cluster`): members in other processes and in this one.
//!
//! - [`hello`]: the test grain (the Go members host the same one) and its messages.
//! - [`activations`]: a duplicate-activation detector across processes (a hello grain
//!   logging its life to a file, and the check of those logs for overlaps).
//! - [`protocol`]: [`MemberProcess`], a member in its own process — protoactor-go's
//!   `interop/cmd/gocluster` or a Rust member (this test binary re-run as a child) — driven
//!   over gocluster's line protocol (commands on stdin, one answer line each on stdout; the
//!   protocol is described in `interop/cmd/gocluster/main.go`), on the automanaged, etcd or
//!   consul provider ([`Provider`]).
//! - [`child`]: the Rust side of that protocol; a test binary that starts Rust members
//!   declares the child test with [`rust_member_child_test!`](crate::rust_member_child_test).
//! - [`scenario`]: [`NodeBuilder`] for N members of one provider in this process (a
//!   [`ScopedNode`] stops when dropped), and
//!   [`AutoManagedPeers`] for N automanaged members in N processes.
//! - [`load`]: a caller in this process calling logged hello grains without pause and
//!   recording which activation answered each identity when (churn scenarios).
//!
//! # Example
//!
//! A Go and a Rust member in their own processes on the automanaged provider (the test
//! binary declares `protoactor_testkit::rust_member_child_test!();` once, at top level):
//!
//! ```no_run
//! use std::time::Duration;
//! use protoactor_testkit::cluster::*;
//!
//! let peers = AutoManagedPeers::new(2);
//! let Some(mut go) = MemberProcess::go("go", CLUSTER, &peers.provider(0), &["hello"]) else {
//!     return; // no `go`: skipped loudly (a failure under PROTOACTOR_INTEROP=required)
//! };
//! let mut rust = MemberProcess::rust("rust", CLUSTER, &peers.provider(1), &["hello"]);
//! let ids = [go.id.clone(), rust.id.clone()];
//! let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
//! go.await_members(&ids, Duration::from_secs(60));
//! let reply = rust.call("hello", "someone", "crab").expect("a grain answers");
//! assert!(reply.address == go.address || reply.address == rust.address);
//! ```
//!
//! Layers, bottom-up: `hello`, `activations`, `protocol` (the parent's side), `scenario`,
//! `load`, `child` (a member built by `scenario`, answering the protocol).

pub mod activations;
pub mod child;
pub mod hello;
pub mod load;
pub mod protocol;
pub mod scenario;

pub use child::{
    handle, is_member_child, run_rust_member_if_child, run_rust_member_if_child_with, serve_member,
    serve_member_with, start_rust_member,
};
pub use hello::{hello_props, serialization, HelloRequest, HelloResponse};
pub use protocol::{
    assert_same_owners, differences, go_call_after_a_leave, go_member_binary, MemberProcess,
    Owners, Provider, Reply, SeenMember, ANSWER, CLUSTER, ENV_ACTIVATION_LOG, ENV_CLUSTER,
    ENV_KINDS, ENV_LOOKUP, GO_ACTIVATION_LOG_ARG, RUST_MEMBER_CHILD,
};
pub use scenario::{automanaged, sink_kind, AutoManagedPeers, Node, NodeBuilder, ScopedNode};

/// Declares the test `rust_member_child`, the child mode of this test binary that
/// [`MemberProcess::rust`] starts (it does nothing when run as a test).
#[macro_export]
macro_rules! rust_member_child_test {
    () => {
        /// Child mode of this binary: a Rust member process for the tests here (does
        /// nothing when run as a test).
        #[test]
        fn rust_member_child() {
            $crate::cluster::run_rust_member_if_child();
        }
    };
}
