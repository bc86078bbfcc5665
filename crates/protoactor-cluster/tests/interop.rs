//! One cluster of two protoactor-go members (`interop/cmd/gocluster`, the Go module pinned in
//! interop/go.mod) and one Rust member, on the automanaged provider with disthash; the Rust
//! member speaks the 2024 wire variant (`WireVariant::Legacy2024`). Every member is its own
//! process, driven over stdin/stdout (see protoactor-testkit's `cluster` module).
//!
//! Without `go` the test prints a loud SKIPPED line and passes, unless
//! `PROTOACTOR_INTEROP=required` (CI), where it fails.

use std::collections::BTreeSet;
use std::time::Duration;

use protoactor_testkit::cluster::*;

/// Kind hosted on every member.
const ALL: &str = "hello";
/// Kind hosted only on the Rust member.
const RUST_ONLY: &str = "rustonly";
/// Kind hosted only on the first Go member.
const GO_ONLY: &str = "goonly";
/// Longest wait for a topology change (the provider polls every second; Go drops a member
/// on its first failed poll).
const TOPOLOGY: Duration = Duration::from_secs(60);

protoactor_testkit::rust_member_child_test!();

fn identities(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[test]
fn go_and_rust_members_form_one_cluster() {
    if go_member_binary().is_none() {
        return;
    }
    let peers = AutoManagedPeers::new(3);
    let mut go1 = MemberProcess::go("go1", CLUSTER, &peers.provider(0), &[ALL, GO_ONLY]).unwrap();
    let mut go2 = MemberProcess::go("go2", CLUSTER, &peers.provider(1), &[ALL]).unwrap();
    let rust_member =
        || MemberProcess::rust("rust", CLUSTER, &peers.provider(2), &[ALL, RUST_ONLY]);
    let mut rust = rust_member();

    // One topology, the same on every member.
    let ids = [go1.id.clone(), go2.id.clone(), rust.id.clone()];
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let seen_by_go = go1.await_members(&ids, TOPOLOGY);
    go2.await_members(&ids, TOPOLOGY);
    let seen_by_rust = rust.await_members(&ids, TOPOLOGY);
    let rust_in_go = seen_by_go.iter().find(|m| m.id == rust.id).unwrap();
    assert_eq!(rust_in_go.address, rust.address);
    assert_eq!(rust_in_go.kinds, [ALL, RUST_ONLY]);
    let go1_in_rust = seen_by_rust.iter().find(|m| m.id == go1.id).unwrap();
    assert_eq!(go1_in_rust.address, go1.address);
    assert!(go1_in_rust.kinds.contains(&GO_ONLY.to_string()));

    // Gossip flows both ways: Go holds the Rust member's topology and ever newer heartbeats
    // (so Go never expires it), the Rust member holds the Go members'.
    for go in [&mut go1, &mut go2] {
        go.await_gossip("topology", &[(&rust.id, 1)], TOPOLOGY);
        let first = go.await_gossip("heartbeat", &[(&rust.id, 1)], TOPOLOGY)[&rust.id];
        go.await_gossip("heartbeat", &[(&rust.id, first + 1)], TOPOLOGY);
    }
    let (g1, g2) = (go1.id.clone(), go2.id.clone());
    rust.await_gossip("topology", &[(&g1, 1), (&g2, 1)], TOPOLOGY);
    let seen = rust.await_gossip("heartbeat", &[(&g1, 1), (&g2, 1)], TOPOLOGY);
    rust.await_gossip(
        "heartbeat",
        &[(&g1, seen[&g1] + 1), (&g2, seen[&g2] + 1)],
        TOPOLOGY,
    );

    // Go calls a kind that only the Rust member hosts, and the reverse.
    let r = go1
        .call(RUST_ONLY, "r1", "gopher")
        .expect("Go calls a Rust grain");
    assert_eq!(
        (r.kind.as_str(), r.identity.as_str(), r.address.as_str()),
        (RUST_ONLY, "r1", rust.address.as_str())
    );
    assert_eq!(r.message, "hello gopher from rustonly/r1");
    let r = rust
        .call(GO_ONLY, "g1", "crab")
        .expect("Rust calls a Go grain");
    assert_eq!(
        (r.kind.as_str(), r.address.as_str()),
        (GO_ONLY, go1.address.as_str())
    );
    assert_eq!(r.message, "hello crab from goonly/g1");

    // The generated-grain shape (cluster.GrainRequest, errors as cluster.GrainErrorResponse)
    // both ways.
    let r = go2
        .grain_call(RUST_ONLY, "r1", "generated", 0)
        .expect("GrainRequest to Rust");
    assert_eq!(r.address, rust.address);
    assert_eq!(r.message, "hello generated from rustonly/r1");
    let e = go2.grain_call(RUST_ONLY, "r1", "x", 7).unwrap_err();
    assert!(e.starts_with("ERROR grain error UNIMPLEMENTED:"), "{e}");
    let r = rust
        .grain_call(GO_ONLY, "g1", "generated", 0)
        .expect("GrainRequest to Go");
    assert_eq!(r.address, go1.address);
    let e = rust.grain_call(GO_ONLY, "g1", "x", 7).unwrap_err();
    assert!(e.starts_with("ERROR grain error UNIMPLEMENTED:"), "{e}");

    // 1,000 identities of a kind on every member: every member reaches the same activation
    // (same owner address, same PID), and the Rust member owns its share.
    let many = identities("id", 1000);
    let from_go1 = go1.owners(ALL, &many);
    let from_rust = rust.owners(ALL, &many);
    let from_go2 = go2.owners(ALL, &many);
    assert_eq!(from_go1.len(), 1000);
    assert!(
        from_go1.values().all(|(addr, _)| addr != "-"),
        "Go found no owner for some"
    );
    let diff = differences(&from_go1, &from_rust);
    assert!(diff.is_empty(), "Rust and Go disagree: {diff:?}");
    let diff = differences(&from_go1, &from_go2);
    assert!(diff.is_empty(), "the Go members disagree: {diff:?}");
    let per_owner = |addr: &str| from_go1.values().filter(|(a, _)| a == addr).count();
    for m in [&go1.address, &go2.address, &rust.address] {
        assert!(per_owner(m) > 0, "{m} owns none of 1,000 identities");
    }
    let on_rust: Vec<String> = many
        .iter()
        .filter(|id| from_go1[*id].0 == rust.address)
        .take(20)
        .cloned()
        .collect();

    // The Rust member is killed: Go drops it, and Go's next calls to its former grains
    // succeed on a Go member.
    let old_rust_id = rust.id.clone();
    rust.kill();
    go1.await_absent(&[&old_rust_id], TOPOLOGY);
    go2.await_absent(&[&old_rust_id], TOPOLOGY);
    let go_addrs: BTreeSet<String> = [go1.address.clone(), go2.address.clone()].into();
    for id in &on_rust {
        let r = go1
            .call(ALL, id, "again")
            .unwrap_or_else(|e| panic!("Go's call to {id} after the Rust member died failed: {e}"));
        assert!(
            go_addrs.contains(&r.address),
            "{id} answered from {}",
            r.address
        );
    }

    // Restarted (same health port, new system id): a member again, hosting grains for Go.
    let mut rust = rust_member();
    assert_ne!(rust.id, old_rust_id);
    let ids = [go1.id.clone(), go2.id.clone(), rust.id.clone()];
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    go1.await_members(&ids, TOPOLOGY);
    go2.await_members(&ids, TOPOLOGY);
    rust.await_members(&ids, TOPOLOGY);
    let r = go2
        .call(RUST_ONLY, "r2", "back")
        .expect("Go calls the restarted Rust member");
    assert_eq!(r.address, rust.address);
    let some = identities("id", 200);
    let owners = go1.owners(ALL, &some);
    assert_eq!(
        rust.owners(ALL, &some),
        owners,
        "Rust and Go disagree after the restart"
    );
    let now_on_rust: Vec<&String> = some
        .iter()
        .filter(|id| owners[*id].0 == rust.address)
        .take(10)
        .collect();
    assert!(
        !now_on_rust.is_empty(),
        "the restarted member owns none of 200 identities"
    );
    for id in now_on_rust {
        let r = go1
            .call(ALL, id, "restarted")
            .expect("Go calls a grain on the restarted member");
        assert_eq!(r.address, rust.address, "{id}");
    }

    // A graceful stop: the Rust member pushes `left` to every member, exits cleanly and
    // leaves; the Go members live on.
    let rust_id = rust.id.clone();
    let status = rust.stop();
    assert!(status.success(), "the Rust member exited with {status}");
    go1.await_gossip("left", &[(&rust_id, 1)], TOPOLOGY);
    go2.await_gossip("left", &[(&rust_id, 1)], TOPOLOGY);
    go1.await_absent(&[&rust_id], TOPOLOGY);
    go2.await_absent(&[&rust_id], TOPOLOGY);
    // Nothing the Rust member sent made a Go member exit (Go exits on an unknown type name).
    let go1_address = go1.address.clone();
    for go in [&mut go1, &mut go2] {
        let r = go
            .call(GO_ONLY, "g2", "still-there")
            .expect("Go members still serve");
        assert_eq!(r.address, go1_address);
        assert!(go.is_running(), "{} exited", go.label);
    }
}
