//! The management API of a cluster of member processes (automanaged provider), queried over
//! HTTP from the test: the members (a killed member gone within the heartbeat expiry),
//! activations per kind per member and this member's identities page by page, the
//! processes of every member (the remote `ListProcesses` RPC), the per-method request
//! latency in `/metrics`, the bearer token and the base path.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use protoactor_cluster::management::{ManagementConfig, ManagementServer};
use protoactor_cluster::Cluster;
use protoactor_testkit::cluster::{run_rust_member_if_child_with, AutoManagedPeers, MemberProcess};
use serde_json::Value;

const CLUSTER: &str = "mgmt-processes";
const WAIT: Duration = Duration::from_secs(60);
const TOKEN: &str = "s3cret";
const BASE: &str = "/ops";
/// Scheduling slack on a loaded machine, added to a protocol's own bound.
const SLACK: Duration = Duration::from_secs(15);

/// The management servers a child runs (kept until it exits).
static SERVERS: Mutex<Vec<ManagementServer>> = Mutex::new(Vec::new());

/// `management <base path> <token>`: starts the member's management API on a free port;
/// answers `REPLY <url>`.
fn extra(cluster: &Cluster, line: &str) -> Option<String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let ["management", base, token] = f.as_slice() else {
        return None;
    };
    let config = ManagementConfig::new("127.0.0.1:0".parse().unwrap())
        .with_base_path(*base)
        .with_token(*token);
    Some(match ManagementServer::start(cluster, config) {
        Ok(s) => {
            let url = s.url();
            SERVERS.lock().unwrap().push(s);
            format!("REPLY {url}")
        }
        Err(e) => format!("ERROR {e}"),
    })
}

/// Child mode of this binary (the name `MemberProcess::rust` runs): a Rust member with the
/// `management` command. Does nothing when run as a test.
#[test]
fn rust_member_child() {
    run_rust_member_if_child_with(extra);
}

/// A GET over a fresh connection: the status and the body.
fn get(host: &str, path: &str, token: Option<&str>) -> (u16, String) {
    protoactor_testkit::http::get(host, path, token, WAIT)
}

fn get_json(host: &str, path: &str) -> Value {
    let (status, body) = get(host, path, Some(TOKEN));
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// Polls `path` until `ok` holds for its JSON; panics with the last answer after `within`.
fn await_json(host: &str, path: &str, within: Duration, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let v = get_json(host, path);
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path} never matched; last: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn member_ids(v: &Value) -> Vec<String> {
    v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_management_api_of_member_processes() {
    if protoactor_testkit::cluster::is_member_child() {
        return;
    }
    let peers = AutoManagedPeers::new(3);
    let mut members: Vec<MemberProcess> = (0..3)
        .map(|i| MemberProcess::rust(&format!("m{i}"), CLUSTER, &peers.provider(i), &["hello"]))
        .collect();
    let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    for m in &mut members {
        m.await_members(&id_refs, WAIT);
    }
    let answer = members[0].command(&format!("management {BASE} {TOKEN}"));
    let url = answer
        .strip_prefix("REPLY http://")
        .unwrap_or_else(|| panic!("{answer}"));
    let host = url
        .strip_suffix(BASE)
        .expect("served under the base path")
        .to_string();

    // The token is required; the routes live under the base path only.
    assert_eq!(get(&host, "/ops/cluster/members", None).0, 401);
    assert_eq!(get(&host, "/ops/cluster/members", Some("wrong")).0, 401);
    assert_eq!(get(&host, "/cluster/members", Some(TOKEN)).0, 404);

    // Members: all three, each with its heartbeat (gossip) and kinds.
    let all = await_json(&host, "/ops/cluster/members", WAIT, |v| {
        let mut listed = member_ids(v);
        listed.sort();
        let mut want = ids.clone();
        want.sort();
        listed == want
            && v["members"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["heartbeat_age_ms"].is_i64())
    });
    assert_eq!(all["self"], ids[0].as_str());
    assert_eq!(all["members"][0]["kinds"][0], "hello");

    // 30 grains through member 0: its calls' latency per method, their activations spread.
    for i in 0..30 {
        members[0]
            .call("hello", &format!("user-{i}"), "x")
            .unwrap_or_else(|e| panic!("call {i}: {e}"));
    }
    let activations = await_json(&host, "/ops/cluster/activations", WAIT, |v| {
        ids.iter()
            .map(|id| v["members"][id]["hello"].as_i64().unwrap_or(0))
            .sum::<i64>()
            == 30
    });
    let per_member: Vec<i64> = ids
        .iter()
        .map(|id| activations["members"][id]["hello"].as_i64().unwrap())
        .collect();
    assert!(
        per_member.iter().filter(|&&n| n > 0).count() >= 2,
        "30 grains on one member: {per_member:?}"
    );

    // This member's identities, page by page: disjoint pages that add up to its count.
    let local_total = per_member[0] as usize;
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = get_json(
            &host,
            &format!("/ops/cluster/activations?kind=hello&offset={offset}&limit=4"),
        );
        assert_eq!(
            page["local"]["total"].as_u64().unwrap() as usize,
            local_total
        );
        assert_eq!(page["local"]["limit"], 4);
        let ids_here: Vec<String> = page["local"]["identities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                assert_eq!(x["kind"], "hello");
                x["identity"].as_str().unwrap().to_string()
            })
            .collect();
        assert!(ids_here.len() <= 4);
        if ids_here.is_empty() {
            break;
        }
        seen.extend(ids_here);
        offset += 4;
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        (seen.len(), sorted.len()),
        (local_total, local_total),
        "{seen:?}"
    );
    assert_eq!(seen, sorted, "pages come sorted");
    let other_kind = get_json(&host, "/ops/cluster/activations?kind=nope");
    assert_eq!(other_kind["local"]["total"], 0);
    assert_eq!(
        get(&host, "/ops/cluster/activations?limit=x", Some(TOKEN)).0,
        400
    );
    let default_page = get_json(&host, "/ops/cluster/activations");
    assert_eq!(default_page["local"]["limit"], 100);

    // Processes of every member: this one's locally, the others' over ListProcesses.
    let mut grains = 0;
    for m in &members {
        let v = get_json(
            &host,
            &format!(
                "/ops/actors?pattern=partition-activator%2Fuser-&member={}",
                m.address
            ),
        );
        assert_eq!(v["member"], m.address.as_str());
        grains += v["ids"].as_array().unwrap().len();
    }
    assert_eq!(grains, 30);

    // Metrics: the latency histogram of the 30 calls, per kind and method.
    let (status, metrics) = get(&host, "/ops/metrics", Some(TOKEN));
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            "protocluster_grain_request_duration_seconds_count{kind=\"hello\",method=\"HelloRequest\"} 30\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "protocluster_grain_request_duration_seconds_bucket{kind=\"hello\",method=\"HelloRequest\",le=\"+Inf\"} 30\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("protocluster_members_count 3\n"),
        "{metrics}"
    );
    let requests = get_json(&host, "/ops/cluster/requests");
    assert_eq!(requests["requests"][0]["method"], "HelloRequest");
    assert_eq!(requests["requests"][0]["count"], 30);

    // A killed member is gone from the members within the heartbeat expiry (the provider's
    // health polls usually notice first), plus slack for a loaded machine.
    let expiry = protoactor_cluster::config::ClusterConfig::DEFAULT_HEARTBEAT_EXPIRATION;
    let killed = ids[2].clone();
    members[2].kill();
    let started = Instant::now();
    await_json(&host, "/ops/cluster/members", expiry + SLACK, |v| {
        !member_ids(v).contains(&killed)
    });
    eprintln!("killed member gone after {:?}", started.elapsed());
}
