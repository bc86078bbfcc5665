//! The etcd provider against a real etcd server (`scripts/start-etcd.sh`, Debian's
//! `etcd-server`), found through `PROTOACTOR_ETCD_ENDPOINTS`. Without it the tests print a
//! loud SKIPPED line and pass, unless `PROTOACTOR_ETCD=required` (CI), where they fail. The
//! restart test starts its own etcd on its own port (through the same script), so it never
//! disturbs the shared one. Every test uses its own cluster name.
//!
//! Member processes (protoactor-testkit's `cluster` module): Rust members are this binary re-run as a child; the Go
//! member is `interop/cmd/gocluster -provider etcd` (needs `go`; `PROTOACTOR_INTEROP=required`
//! fails instead of skipping).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions, PutOptions};
use protoactor_cluster::etcd::{EtcdConfig, EtcdNode, EtcdProvider};
use protoactor_cluster::Member;
use protoactor_testkit::cluster::*;
use protoactor_testkit::services::{etcd_endpoints, ScriptServer};

const HELLO: &str = "hello";
/// Longest wait for a topology change (never a timing assertion).
const TOPOLOGY: Duration = Duration::from_secs(60);

protoactor_testkit::rust_member_child_test!();

/// A cluster name no other test run uses.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

fn member_id(cluster: &str, system_id: &str) -> String {
    format!("{cluster}@{system_id}")
}

fn identities(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

async fn etcd(endpoints: &str) -> Client {
    Client::connect(endpoints.split(',').collect::<Vec<_>>(), None)
        .await
        .expect("etcd answers")
}

/// The keys under `prefix` and their values.
async fn keys(client: &mut Client, prefix: &str) -> Vec<(String, String, i64)> {
    let r = client
        .get(prefix, Some(GetOptions::new().with_prefix()))
        .await
        .expect("etcd get");
    r.kvs()
        .iter()
        .map(|kv| {
            (
                kv.key_str().unwrap().to_string(),
                kv.value_str().unwrap_or("").to_string(),
                kv.lease(),
            )
        })
        .collect()
}

async fn hello(node: &Node, identity: &str) -> Result<HelloResponse, String> {
    (node.hello(HELLO, identity, "etcd").await).map_err(|e| e.to_string())
}

#[test]
fn three_rust_members_converge_lose_a_killed_one_and_see_a_graceful_leave() {
    let Some(ep) = etcd_endpoints() else { return };
    let cluster = unique("etcd-three");
    let provider = Provider::Etcd {
        endpoints: ep.clone(),
    };
    let start = |label: &str| MemberProcess::rust(label, &cluster, &provider, &[HELLO]);
    let mut a = start("a");
    let mut b = start("b");
    let mut c = start("c");
    let ids: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|m| member_id(&cluster, &m.id))
        .collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    for m in [&mut a, &mut b, &mut c] {
        let seen = m.await_members(&id_refs, TOPOLOGY);
        assert_eq!(seen.len(), 3, "{}: {seen:?}", m.label);
    }

    // One owner per identity, the same from every member, each member owning some.
    let many = identities("id", 300);
    let owners = a.owners(HELLO, &many);
    assert_same_owners(&mut b, HELLO, &many, &owners);
    assert_same_owners(&mut c, HELLO, &many, &owners);
    for m in [&a, &b, &c] {
        assert!(
            owners.values().any(|(addr, _)| *addr == m.address),
            "{} owns none of 300 identities",
            m.label
        );
    }
    let on_c: Vec<String> = many
        .iter()
        .filter(|id| owners[*id].0 == c.address)
        .take(20)
        .cloned()
        .collect();

    // SIGKILL: nothing deregisters c; its lease expires and both others drop it.
    c.kill();
    a.await_absent(&[&ids[2]], TOPOLOGY);
    b.await_absent(&[&ids[2]], TOPOLOGY);
    let alive: BTreeSet<String> = [a.address.clone(), b.address.clone()].into();
    for id in &on_c {
        let r = a
            .call(HELLO, id, "again")
            .unwrap_or_else(|e| panic!("{id} after c died: {e}"));
        assert!(
            alive.contains(&r.address),
            "{id} answered from {}",
            r.address
        );
    }
    let after = identities("id", 300);
    let owners_a = a.owners(HELLO, &after);
    assert_same_owners(&mut b, HELLO, &after, &owners_a);

    // Graceful: b deletes its key and revokes its lease on the way out; a sees it leave
    // well before a lease could expire.
    let b_id = ids[1].clone();
    let status = b.stop();
    assert!(status.success(), "b exited with {status}");
    let t = Instant::now();
    a.await_absent(&[&b_id], TOPOLOGY);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "a graceful leave took {:?} (a lease expiry, not the deregistration)",
        t.elapsed()
    );
    let r = a.call(HELLO, "last", "alone").expect("a alone serves");
    assert_eq!(r.address, a.address);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_format_values_foreign_writers_and_graceful_deregistration() {
    let Some(ep) = etcd_endpoints() else { return };
    let cluster = unique("etcd-format");
    let mut client = etcd(&ep).await;
    let prefix = format!("/protoactor/{cluster}/");
    // Another writer's garbage, a node without `alive` (Go would treat it as dead on a watch
    // event; it is live), and a node of a cluster whose name starts with ours (Go's prefix
    // without a slash would see it).
    client
        .put(format!("{prefix}garbage"), "not json", None)
        .await
        .unwrap();
    let foreign = format!("{cluster}@foreign");
    client
        .put(
            format!("{prefix}{foreign}"),
            format!(r#"{{"id":"{foreign}","host":"127.0.0.1","port":1,"kinds":["elsewhere"]}}"#),
            None,
        )
        .await
        .unwrap();
    let cousin = format!("{cluster}2@x");
    client
        .put(
            format!("/protoactor/{cluster}2/{cousin}"),
            format!(r#"{{"id":"{cousin}","host":"127.0.0.1","port":2,"alive":true}}"#),
            None,
        )
        .await
        .unwrap();

    let config = EtcdConfig::new(ep.split(',')).with_retry_interval(Duration::from_millis(200));
    let members = NodeBuilder::new(&cluster).with_hello_kinds(&[HELLO]);
    let n1 = members.member(EtcdProvider::new(config.clone()));
    let n2 = members.member(EtcdProvider::new(config.clone()));
    assert_eq!(n1.id(), member_id(&cluster, n1.system.id()));
    let ids = vec![n1.id(), n2.id(), foreign.clone()];
    for n in [&n1, &n2] {
        assert!(
            n.await_ids(&ids, true, TOPOLOGY).await,
            "{}: {:?}",
            n.id(),
            n.cluster.member_list().members()
        );
        assert!(n.cluster.member_list().topology().member(&cousin).is_none());
        assert_eq!(n.cluster.member_list().members().len(), 3);
    }

    // The key and value are Go's, byte for byte, on a lease.
    let kvs = keys(&mut client, &prefix).await;
    let key1 = format!("{prefix}{}", n1.id());
    let (_, value, lease1) = kvs
        .iter()
        .find(|(k, _, _)| *k == key1)
        .cloned()
        .expect("n1 registered");
    let me = n1.cluster.self_member();
    assert_eq!(
        value,
        format!(
            r#"{{"id":"{id}","name":"{id}","host":"127.0.0.1","address":"127.0.0.1","port":{port},"kinds":["hello"],"alive":true}}"#,
            id = me.id,
            port = me.port
        )
    );
    assert!(lease1 != 0, "registered without a lease");
    let ttl = client.lease_time_to_live(lease1, None).await.unwrap().ttl();
    assert!((1..=3).contains(&ttl), "lease TTL {ttl}");

    // Someone deletes n1's key while it lives: n1 registers again (a new lease).
    client.delete(key1.clone(), None).await.unwrap();
    let deadline = Instant::now() + TOPOLOGY;
    loop {
        let kvs = keys(&mut client, &prefix).await;
        if let Some((_, _, lease)) = kvs.iter().find(|(k, _, _)| *k == key1) {
            assert_ne!(*lease, lease1, "registered again on the old lease");
            break;
        }
        assert!(Instant::now() < deadline, "n1 never registered again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(n2.await_ids(&ids, true, TOPOLOGY).await);

    // Grain calls reach both members.
    let mut at = BTreeSet::new();
    for id in identities("g", 40) {
        at.insert(hello(&n1, &id).await.expect("call").address);
    }
    assert_eq!(at.len(), 2, "40 identities all on {at:?}");

    // A client reads the members without registering, and reaches the same activations.
    let client_node = members.client(EtcdProvider::new(config.clone()));
    assert!(client_node.await_ids(&ids, true, TOPOLOGY).await);
    for id in identities("g", 10) {
        let via_client = hello(&client_node, &id).await.expect("client call");
        assert_eq!(
            via_client.address,
            hello(&n2, &id).await.expect("call").address
        );
    }
    let registered: Vec<String> = keys(&mut client, &prefix)
        .await
        .into_iter()
        .map(|k| k.0)
        .collect();
    assert!(
        !registered.iter().any(|k| k.ends_with(&client_node.id())),
        "the client registered: {registered:?}"
    );
    client_node.stop(true).await;

    // Changes after the start come through the watch: a node joins with a lease, then its
    // lease is revoked.
    let late = format!("{cluster}@late");
    let lease = client.lease_grant(30, None).await.unwrap().id();
    let node = EtcdNode::of_member(&Member::new("127.0.0.1", 3, late.clone(), ["elsewhere"]));
    client
        .put(
            format!("{prefix}{late}"),
            node.to_json(),
            Some(PutOptions::new().with_lease(lease)),
        )
        .await
        .unwrap();
    assert!(
        n2.await_ids(std::slice::from_ref(&late), true, TOPOLOGY)
            .await
    );
    client.lease_revoke(lease).await.unwrap();
    assert!(
        n2.await_ids(std::slice::from_ref(&late), false, TOPOLOGY)
            .await
    );
    // `"alive":false` written by a Go member is a leave.
    client
        .put(
            format!("{prefix}{foreign}"),
            format!(r#"{{"id":"{foreign}","host":"127.0.0.1","port":1,"alive":false}}"#),
            None,
        )
        .await
        .unwrap();
    assert!(
        n1.await_ids(std::slice::from_ref(&foreign), false, TOPOLOGY)
            .await
    );

    // Graceful shutdown: key deleted and lease revoked; n1 sees n2 leave at once.
    let key2 = format!("{prefix}{}", n2.id());
    let lease2 = keys(&mut client, &prefix)
        .await
        .into_iter()
        .find(|(k, _, _)| *k == key2)
        .expect("n2 registered")
        .2;
    let n2_id = n2.id();
    let t = Instant::now();
    n2.stop(true).await;
    assert!(n1.await_ids(&[n2_id], false, TOPOLOGY).await);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "leave took {:?}",
        t.elapsed()
    );
    assert!(keys(&mut client, &prefix)
        .await
        .iter()
        .all(|(k, _, _)| *k != key2));
    assert_eq!(
        client.lease_time_to_live(lease2, None).await.unwrap().ttl(),
        -1,
        "the lease outlived the member"
    );

    n1.stop(true).await;
    client
        .delete(
            prefix.clone(),
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    client
        .delete(
            format!("/protoactor/{cluster}2/"),
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await
        .unwrap();
}

/// Polls etcd until every key is there (an observable event; etcd offers no wait for it).
async fn await_keys(client: &mut Client, prefix: &str, want: &[String]) {
    let deadline = Instant::now() + TOPOLOGY;
    loop {
        let have: BTreeSet<String> = match client
            .get(prefix, Some(GetOptions::new().with_prefix()))
            .await
        {
            Ok(r) => r
                .kvs()
                .iter()
                .filter_map(|kv| kv.key_str().ok().map(String::from))
                .collect(),
            Err(_) => BTreeSet::new(),
        };
        if want.iter().all(|k| have.contains(k)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "keys {want:?} never came back: {have:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_reregister_and_keep_serving_across_an_etcd_restart() {
    // Needs the etcd binary the shared server runs on; same skip rule.
    if etcd_endpoints().is_none() {
        return;
    }
    let (own, ep) = ScriptServer::etcd();
    let cluster = unique("etcd-restart");
    let prefix = format!("/protoactor/{cluster}/");
    let config = EtcdConfig::new([ep.clone()]).with_retry_interval(Duration::from_millis(200));
    let members = NodeBuilder::new(&cluster).with_hello_kinds(&[HELLO]);
    let n1 = members.member(EtcdProvider::new(config.clone()));
    let n2 = members.member(EtcdProvider::new(config.clone()));
    let ids = vec![n1.id(), n2.id()];
    assert!(n1.await_ids(&ids, true, TOPOLOGY).await && n2.await_ids(&ids, true, TOPOLOGY).await);
    let grains = identities("r", 20);
    let mut before = Vec::new();
    for g in &grains {
        before.push(
            hello(&n1, g)
                .await
                .expect("call before the restart")
                .address,
        );
    }

    // etcd goes away, and comes back empty (its data directory wiped): the members keep
    // their topology and serve meanwhile, then register again.
    own.stop();
    std::fs::remove_dir_all(own.dir.join("data")).unwrap();
    for (g, addr) in grains.iter().zip(&before) {
        let r = hello(&n2, g).await.expect("call while etcd is down");
        assert_eq!(&r.address, addr, "{g} moved while etcd was down");
    }
    assert_eq!(n1.cluster.member_list().members().len(), 2);
    assert_eq!(own.start(), ep);
    let mut client = etcd(&ep).await;
    let want: Vec<String> = ids.iter().map(|id| format!("{prefix}{id}")).collect();
    await_keys(&mut client, &prefix, &want).await;

    // Their watches work again: a member started now is seen by both, and sees both.
    let n3 = members.member(EtcdProvider::new(config.clone()));
    let all = vec![n1.id(), n2.id(), n3.id()];
    for n in [&n1, &n2, &n3] {
        assert!(
            n.await_ids(&all, true, TOPOLOGY).await,
            "{}: {:?}",
            n.id(),
            n.cluster.member_list().members()
        );
    }
    let mut at = BTreeSet::new();
    for g in identities("after", 60) {
        let r = hello(&n3, &g).await.expect("call after the restart");
        let again = hello(&n1, &g).await.expect("call after the restart");
        assert_eq!(r.address, again.address, "{g}: members disagree");
        at.insert(r.address);
    }
    assert_eq!(at.len(), 3, "60 identities all on {at:?}");
    for n in [n1, n2, n3] {
        n.stop(true).await;
    }
    drop(own);
}

#[test]
fn go_and_rust_members_share_one_etcd() {
    let Some(ep) = etcd_endpoints() else { return };
    if go_member_binary().is_none() {
        return;
    }
    let cluster = unique("etcd-mixed");
    let provider = Provider::Etcd {
        endpoints: ep.clone(),
    };
    let mut go = MemberProcess::go("go", &cluster, &provider, &[HELLO, "goonly"]).unwrap();
    let mut rust = MemberProcess::rust("rust", &cluster, &provider, &[HELLO, "rustonly"]);
    let go_id = member_id(&cluster, &go.id);
    let rust_id = member_id(&cluster, &rust.id);
    let ids = [go_id.as_str(), rust_id.as_str()];
    let seen_by_go = go.await_members(&ids, TOPOLOGY);
    let seen_by_rust = rust.await_members(&ids, TOPOLOGY);
    assert_eq!(
        seen_by_go, seen_by_rust,
        "Go and Rust see different topologies"
    );
    let rust_in_go = seen_by_go.iter().find(|m| m.id == rust_id).unwrap();
    assert_eq!(rust_in_go.address, rust.address);
    assert_eq!(rust_in_go.kinds, [HELLO, "rustonly"]);

    // Grain calls both ways, and the same owners from both sides.
    let r = go
        .call("rustonly", "r1", "gopher")
        .expect("Go calls a Rust grain");
    assert_eq!(
        (r.address.as_str(), r.message.as_str()),
        (rust.address.as_str(), "hello gopher from rustonly/r1")
    );
    let r = rust
        .call("goonly", "g1", "crab")
        .expect("Rust calls a Go grain");
    assert_eq!(
        (r.address.as_str(), r.message.as_str()),
        (go.address.as_str(), "hello crab from goonly/g1")
    );
    let many = identities("id", 200);
    let owners = go.owners(HELLO, &many);
    assert_same_owners(&mut rust, HELLO, &many, &owners);
    for addr in [&go.address, &rust.address] {
        assert!(
            owners.values().any(|(a, _)| a == addr),
            "{addr} owns none of 200"
        );
    }
    let on_rust: Vec<String> = many
        .iter()
        .filter(|id| owners[*id].0 == rust.address)
        .take(10)
        .cloned()
        .collect();

    // The Rust member is killed: Go drops it when its lease expires and serves its grains.
    rust.kill();
    go.await_absent(&[&rust_id], TOPOLOGY);
    for id in &on_rust {
        let r = go_call_after_a_leave(&mut go, HELLO, id, "again");
        assert_eq!(r.address, go.address);
    }

    // A new Rust member joins the Go member (Go's watch sees its key) and hosts grains again.
    let mut rust = MemberProcess::rust("rust2", &cluster, &provider, &[HELLO, "rustonly"]);
    let rust_id = member_id(&cluster, &rust.id);
    go.await_members(&[&go_id, &rust_id], TOPOLOGY);
    rust.await_members(&[&go_id, &rust_id], TOPOLOGY);
    let r = go
        .call("rustonly", "r2", "back")
        .expect("Go calls the new Rust member");
    assert_eq!(r.address, rust.address);

    // The Go member leaves gracefully (Go deletes its key): the Rust member drops it.
    let status = go.stop();
    assert!(status.success(), "the Go member exited with {status}");
    rust.await_absent(&[&go_id], TOPOLOGY);
    let r = rust.call(HELLO, "solo", "x").expect("Rust alone serves");
    assert_eq!(r.address, rust.address);
}

/// A member configured to start anyway starts while nothing listens on its etcd endpoint;
/// every call then fails at once with "provider not connected" (not an empty topology that
/// reads like a hosting error), and once etcd comes up the member registers and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_anyway_member_reports_provider_not_connected_until_etcd_comes_up() {
    // Needs the etcd binary the shared server runs on; same skip rule.
    if etcd_endpoints().is_none() {
        return;
    }
    let (own, ep) = ScriptServer::etcd_unstarted();
    let cluster = unique("etcd-start-anyway");
    let config = EtcdConfig::new([ep.clone()])
        .with_connect_timeout(Duration::from_millis(500))
        .with_retry_interval(Duration::from_millis(200))
        .with_start_anyway(true);
    let started = Instant::now();
    let node = NodeBuilder::new(&cluster)
        .with_hello_kinds(&[HELLO])
        .member(EtcdProvider::new(config));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the start waited for etcd: {:?}",
        started.elapsed()
    );
    for _ in 0..2 {
        let called = Instant::now();
        let err = hello(&node, "early").await.expect_err("no etcd yet");
        assert!(
            err.starts_with("the cluster provider is not connected yet: etcd: "),
            "{err}"
        );
        assert!(err.contains(&ep), "names the endpoint: {err}");
        assert!(
            called.elapsed() < Duration::from_secs(10),
            "failed at once, not after retries: {:?}",
            called.elapsed()
        );
    }

    assert_eq!(own.start(), ep);
    let ids = vec![node.id()];
    assert!(
        node.await_ids(&ids, true, TOPOLOGY).await,
        "registered once etcd is up"
    );
    assert_eq!(node.cluster.member_list().provider_not_connected(), None);
    let r = hello(&node, "later").await.expect("served once connected");
    assert_eq!(r.message, "hello etcd from hello/later");
    node.stop(true).await;
    drop(own);
}
