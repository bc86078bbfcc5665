//! A Rust-only cluster of three member processes on the automanaged provider (this test
//! binary re-run as children, driven over the gocluster line protocol, see protoactor-testkit's `cluster` module):
//! 1,000 identities spread and each activated once, a member killed with SIGKILL (its grains
//! re-activate elsewhere), restarted (it rejoins), and one stopped gracefully.

use std::time::Duration;

use protoactor_testkit::cluster::*;

const KIND: &str = "hello";
/// Longest wait for a topology change (polls every second; a member leaves after two
/// missed polls in a row).
const TOPOLOGY: Duration = Duration::from_secs(60);

protoactor_testkit::rust_member_child_test!();

fn start(label: &str, peers: &AutoManagedPeers, i: usize) -> MemberProcess {
    MemberProcess::rust(label, CLUSTER, &peers.provider(i), &[KIND])
}

fn identities(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i}")).collect()
}

#[test]
fn rust_members_in_separate_processes_survive_a_kill_a_restart_and_a_graceful_stop() {
    let peers = AutoManagedPeers::new(3);
    let mut a = start("a", &peers, 0);
    let mut b = start("b", &peers, 1);
    let mut c = start("c", &peers, 2);
    let ids = [a.id.clone(), b.id.clone(), c.id.clone()];
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for m in [&mut a, &mut b, &mut c] {
        let seen = m.await_members(&ids, TOPOLOGY);
        assert_eq!(seen.len(), 3, "{}: {seen:?}", m.label);
    }
    // Gossip between the Rust members: each one's heartbeats keep arriving at the others.
    let (ia, ib, ic) = (a.id.clone(), b.id.clone(), c.id.clone());
    let first = a.await_gossip("heartbeat", &[(&ib, 1), (&ic, 1)], TOPOLOGY);
    a.await_gossip(
        "heartbeat",
        &[(&ib, first[&ib] + 1), (&ic, first[&ic] + 1)],
        TOPOLOGY,
    );
    b.await_gossip("heartbeat", &[(&ia, 1), (&ic, 1)], TOPOLOGY);
    c.await_gossip("topology", &[(&ia, 1), (&ib, 1)], TOPOLOGY);

    // 1,000 identities: every member reaches the same single activation of each.
    let all = identities(1000);
    let owners = a.owners(KIND, &all);
    assert_same_owners(&mut b, KIND, &all, &owners);
    assert_same_owners(&mut c, KIND, &all, &owners);
    for m in [&a.address, &b.address, &c.address] {
        let n = owners.values().filter(|(addr, _)| addr == m).count();
        assert!(n > 0, "{m} owns none of 1,000 identities");
    }
    assert!(owners
        .values()
        .all(|(addr, pid)| addr != "-" && !pid.is_empty()));
    let on_c: Vec<String> = all
        .iter()
        .filter(|id| owners[*id].0 == c.address)
        .cloned()
        .collect();

    // SIGKILL c: the others drop it, and its grains re-activate on a or b.
    let old_c = c.id.clone();
    c.kill();
    a.await_absent(&[&old_c], TOPOLOGY);
    b.await_absent(&[&old_c], TOPOLOGY);
    let moved = a.owners(KIND, &on_c);
    assert_same_owners(&mut b, KIND, &on_c, &moved);
    for id in &on_c {
        let (addr, _) = &moved[id];
        assert!(
            *addr == a.address || *addr == b.address,
            "{id} still on {addr}"
        );
    }
    for id in on_c.iter().take(20) {
        let r = b.call(KIND, id, "after-kill").expect("call after the kill");
        assert_eq!(r.address, moved[id].0, "{id}");
    }

    // Restarted with a new system id on the same health port: it rejoins and takes its
    // share back.
    let mut c = start("c2", &peers, 2);
    assert_ne!(c.id, old_c);
    let ids = [a.id.clone(), b.id.clone(), c.id.clone()];
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    a.await_members(&ids, TOPOLOGY);
    b.await_members(&ids, TOPOLOGY);
    c.await_members(&ids, TOPOLOGY);
    // Every member reaches the same activations at once: the PIDs the others cached for
    // identities c now owns were dropped with the topology that brought c back.
    let some = identities(300);
    let owners = a.owners(KIND, &some);
    assert_same_owners(&mut c, KIND, &some, &owners);
    assert_same_owners(&mut b, KIND, &some, &owners);
    let on_new_c: Vec<&String> = some
        .iter()
        .filter(|id| owners[*id].0 == c.address)
        .take(10)
        .collect();
    assert!(
        !on_new_c.is_empty(),
        "the restarted member owns none of 300 identities"
    );
    for id in on_new_c {
        let r = a
            .call(KIND, id, "rejoined")
            .expect("call to the restarted member");
        assert_eq!(r.address, c.address, "{id}");
    }

    // b stops gracefully: it exits cleanly, its `left` reaches the others, and its grains
    // re-activate on a or c.
    let (b_id, b_address) = (b.id.clone(), b.address.clone());
    let on_b: Vec<String> = some
        .iter()
        .filter(|id| owners[*id].0 == b_address)
        .cloned()
        .collect();
    let status = b.stop();
    assert!(status.success(), "b exited with {status}");
    a.await_gossip("left", &[(&b_id, 1)], TOPOLOGY);
    a.await_absent(&[&b_id], TOPOLOGY);
    c.await_absent(&[&b_id], TOPOLOGY);
    for id in on_b.iter().take(20) {
        let r = c
            .call(KIND, id, "after-stop")
            .expect("call after the graceful stop");
        assert!(
            r.address == a.address || r.address == c.address,
            "{id} answered from {}",
            r.address
        );
    }
}
