//! The management API (feature `management`) of a two-member cluster: the JSON routes, the
//! bearer token, the base path, another member's processes over the remote
//! `ListProcesses`/`GetProcessDiagnostics` RPCs, and the topology event stream.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use protoactor::ContextOps;
use protoactor_cluster::management::{ManagementConfig, ManagementServer};
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_testkit::cluster::NodeBuilder;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// A GET over a fresh connection: the status and the body.
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    protoactor_testkit::http::get(addr, path, token, WAIT)
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = get(addr, path, Some("secret"));
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// Polls `path` until `ok` holds for its JSON, or panics after `WAIT`.
fn await_json(addr: SocketAddr, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = get_json(addr, path);
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path} never matched; last: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The next `data:` line of a server-sent `topology` event, as JSON.
fn next_event(lines: &mut impl BufRead) -> Value {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(lines.read_line(&mut line).unwrap() > 0, "the stream ended");
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            return serde_json::from_str(data).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_api_shows_members_activations_processes_and_topology_changes() {
    let agent = InMemAgent::new();
    let mut nodes = NodeBuilder::new("mgmt")
        .with_hello_kinds(&["hello"])
        .members(2, || TestProvider::new(&agent));
    let ids: Vec<String> = nodes.iter().map(|n| n.id()).collect();
    for n in &nodes {
        assert!(n.await_ids(&ids, true, WAIT).await);
    }
    for i in 0..20 {
        nodes[0]
            .hello("hello", &format!("user-{i}"), "x")
            .await
            .unwrap();
    }
    let server = ManagementServer::start(
        &nodes[0].cluster,
        ManagementConfig::new("127.0.0.1:0".parse().unwrap())
            .with_base_path("mgmt")
            .with_token("secret"),
    )
    .unwrap();
    let addr = server.address();
    assert_eq!(server.url(), format!("http://{addr}/mgmt"));

    // The token is required; the routes live under the base path only.
    assert_eq!(get(addr, "/mgmt/cluster/members", None).0, 401);
    assert_eq!(get(addr, "/mgmt/cluster/members", Some("wrong")).0, 401);
    assert_eq!(get(addr, "/cluster/members", Some("secret")).0, 404);
    // The token may come in the query (a browser's EventSource sends no headers); the
    // dashboard page is served from the binary and reads only this API.
    let (status, page) = get(addr, "/mgmt/dashboard?token=secret", None);
    assert_eq!(status, 200);
    assert!(
        page.contains("new EventSource(base + \"/cluster/events\""),
        "{page}"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "nothing external"
    );

    let members = get_json(addr, "/mgmt/cluster/members");
    assert_eq!(members["self"], ids[0]);
    let listed: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
    assert_eq!(members["members"][0]["kinds"][0], "hello");

    let topology = get_json(addr, "/mgmt/cluster/topology");
    assert_eq!(
        topology["hash"],
        nodes[0].cluster.member_list().topology_hash().to_string()
    );

    // Activations per kind per member: both members' heartbeats reach gossip, and the 20
    // grains are spread over them.
    let activations = await_json(addr, "/mgmt/cluster/activations", |v| {
        let total: i64 = ids
            .iter()
            .map(|id| v["members"][id]["hello"].as_i64().unwrap_or(0))
            .sum();
        total == 20
    });
    assert!(activations["members"][&ids[1]]["hello"].as_i64().unwrap() > 0);
    let gossip = await_json(addr, "/mgmt/cluster/gossip", |v| {
        ids.iter().all(|id| v[id]["heartbeat"].as_i64().is_some())
    });
    assert!(gossip[&ids[0]]["topology"].as_i64().is_some(), "{gossip}");

    // Prometheus text: the members, the activations and a dead letter sent after the start.
    nodes[0].system.root().send(
        &protoactor::Pid::new(nodes[0].cluster.address(), "nobody-here"),
        1u8,
    );
    let dead_letters = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("protoactor_deadletter_count "))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + WAIT;
    let metrics = loop {
        let (status, text) = get(addr, "/mgmt/metrics", Some("secret"));
        assert_eq!(status, 200);
        if dead_letters(&text) >= 1 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        metrics.contains("protocluster_members_count 2\n"),
        "{metrics}"
    );
    assert!(dead_letters(&metrics) >= 1, "{metrics}");
    assert!(
        metrics.contains(&format!(
            "protocluster_virtualactors{{member=\"{}\",kind=\"hello\"}} ",
            ids[1]
        )),
        "{metrics}"
    );

    // This node's processes, and the other member's through the remote RPCs.
    let local = get_json(addr, "/mgmt/actors?pattern=partition-activator%2Fuser-");
    assert_eq!(local["member"], nodes[0].cluster.address());
    let other = nodes[1].cluster.address().to_string();
    let remote = get_json(
        addr,
        &format!("/mgmt/actors?pattern=partition-activator%2Fuser-&member={other}"),
    );
    assert_eq!(remote["member"], other.as_str());
    let local_ids = local["ids"].as_array().unwrap().len();
    let remote_ids: Vec<String> = remote["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect();
    assert_eq!(local_ids + remote_ids.len(), 20);
    let diag = get_json(
        addr,
        &format!(
            "/mgmt/actors/{}?member={other}",
            remote_ids[0].replace('/', "%2F").replace('$', "%24")
        ),
    );
    assert_eq!(diag["diagnostics"], "actor: 0 user messages queued");
    let (status, body) = get(addr, "/mgmt/actors/nobody", Some("secret"));
    assert_eq!(status, 404);
    assert!(body.contains("no process \\\"nobody\\\""), "{body}");

    // The event stream: the current topology at once, then the one without the member that
    // stopped.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET /mgmt/cluster/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret\r\n\r\n"
    )
    .unwrap();
    let mut lines = BufReader::new(stream);
    let first = next_event(&mut lines);
    assert_eq!(first["members"].as_array().unwrap().len(), 2);
    let gone = nodes.pop().unwrap();
    let gone_id = gone.id();
    gone.stop(true).await;
    let next = next_event(&mut lines);
    assert_eq!(
        next["members"],
        serde_json::json!([ids[0]]),
        "{gone_id} left"
    );

    server.stop();
    for n in nodes {
        n.stop(true).await;
    }
}
