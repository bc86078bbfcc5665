//! The Kubernetes provider against a real kube-apiserver (`scripts/start-kube-apiserver.sh`:
//! Kubernetes v1.37.2 on loopback with its own etcd, RBAC authorization), found through
//! `PROTOACTOR_KUBE_URL`, `PROTOACTOR_KUBE_TOKEN` (an admin token) and `PROTOACTOR_KUBE_CA`.
//! Without them the tests print a loud SKIPPED line and pass, unless
//! `PROTOACTOR_KUBE=required` (CI), where they fail. Each test works in a namespace of its
//! own; the restart test starts its own API server (same script, other ports).
//!
//! No kubelet runs: a test creates each member's pod and sets its status (`Running`, pod IP
//! 127.0.0.1, ready) the way a kubelet would; the members run in this process (one actor
//! system each), each told its pod. The Go member is `interop/cmd/gocluster -provider k8s`
//! (protoactor-go's own provider, in-cluster configuration; needs `go` and root for
//! `unshare`).
#![cfg(feature = "kubernetes")]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use protoactor::prelude::*;
use protoactor_cluster::kubernetes::{
    KubernetesApiStatus, KubernetesConfig, KubernetesProvider, LABEL_PREFIX,
};
use protoactor_cluster::{CallOptions, Cluster, ClusterConfig, DistHashIdentityLookup, Kind};
use protoactor_remote::{Remote, RemoteConfig, WireVariant};
use protoactor_testkit::cluster::*;
use protoactor_testkit::ports::free_port;

const HELLO: &str = "hello";
/// Longest wait for a topology change (never a timing assertion).
const TOPOLOGY: Duration = Duration::from_secs(60);

/// Child mode of this binary: a Rust member on the in-cluster configuration
/// (`KubernetesConfig::in_cluster`), in a pod-like environment made by the parent test.
#[test]
fn rust_member_child() {
    if !is_member_child() {
        return;
    }
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let config = KubernetesConfig::in_cluster()
        .expect("in-cluster config")
        .with_retry_interval(Duration::from_millis(200));
    let kinds = var("CLUSTER_MEMBER_KINDS");
    let kinds: Vec<&str> = kinds.split(',').filter(|k| !k.is_empty()).collect();
    let n = member(&var("CLUSTER_MEMBER_CLUSTER"), config, &kinds);
    serve_member(n.system, n.remote, n.cluster);
}

/// How to reach an API server.
#[derive(Clone, Debug)]
struct Server {
    url: String,
    token: String,
    ca: PathBuf,
}

impl Server {
    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }
}

/// The test server, or `None` after a loud message (panics when required).
fn server() -> Option<Server> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    match (
        var("PROTOACTOR_KUBE_URL"),
        var("PROTOACTOR_KUBE_TOKEN"),
        var("PROTOACTOR_KUBE_CA"),
    ) {
        (Some(url), Some(token), Some(ca)) => Some(Server {
            url,
            token,
            ca: ca.into(),
        }),
        _ if std::env::var("PROTOACTOR_KUBE").as_deref() == Ok("required") => panic!(
            "Kubernetes tests are required (PROTOACTOR_KUBE=required) but PROTOACTOR_KUBE_URL, \
             _TOKEN or _CA is not set (eval \"$(scripts/start-kube-apiserver.sh)\")"
        ),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!! SKIPPED: Kubernetes test not run: PROTOACTOR_KUBE_URL is not set \
                 (eval \"$(scripts/start-kube-apiserver.sh)\"; PROTOACTOR_KUBE=required fails instead) !!!!!\n"
            );
            None
        }
    }
}

/// A client configuration for `server` with `token`, default namespace `ns`.
async fn kube_config(server: &Server, token: &str, ns: &str) -> kube::Config {
    let yaml = format!(
        "apiVersion: v1\nkind: Config\n\
         clusters: [{{name: t, cluster: {{server: \"{}\", certificate-authority: \"{}\"}}}}]\n\
         users: [{{name: u, user: {{token: \"{token}\"}}}}]\n\
         contexts: [{{name: c, context: {{cluster: t, user: u, namespace: \"{ns}\"}}}}]\n\
         current-context: c\n",
        server.url,
        server.ca.display()
    );
    let kc = Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
    kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("client config")
}

async fn admin(server: &Server) -> Client {
    Client::try_from(kube_config(server, &server.token, "default").await).expect("client")
}

/// A namespace name no other test run uses.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{}", std::process::id(), nanos % 1_000_000)
}

/// Creates namespace `ns` and its `default` service account (no controller manager runs to
/// create it, and the ServiceAccount admission plugin wants it for every pod).
async fn namespace(client: &Client, ns: &str) {
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap(),
    )
    .await
    .expect("namespace created");
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": "default"}})).unwrap(),
    )
    .await
    .expect("default service account created");
}

/// Creates pod `name` (bound to a node when `node`: deleting it then leaves it terminating,
/// as no kubelet confirms) and makes it running and ready at 127.0.0.1.
async fn pod(pods: &Api<Pod>, name: &str, node: bool) {
    let mut spec = serde_json::json!({
        "containers": [{"name": "member", "image": "protoactor-test-member"}],
    });
    if node {
        spec["nodeName"] = "node-1".into();
    }
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"app": "protoactor-test"}},
            "spec": spec,
        }))
        .unwrap(),
    )
    .await
    .expect("pod created");
    set_ready(pods, name, true).await;
}

/// What a kubelet reports for a running pod whose container is (or is not) ready.
async fn set_ready(pods: &Api<Pod>, name: &str, ready: bool) {
    let flag = if ready { "True" } else { "False" };
    let status = serde_json::json!({"status": {
        "phase": "Running",
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "conditions": [{"type": "Ready", "status": flag}],
        "containerStatuses": [{
            "name": "member", "ready": ready, "restartCount": 0,
            "image": "protoactor-test-member", "imageID": "",
            "state": {"running": {}},
        }],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("pod status set");
}

/// The pod's `cluster.proto.actor/*` labels.
async fn proto_labels(pods: &Api<Pod>, name: &str) -> BTreeMap<String, String> {
    let pod = pods.get(name).await.expect("pod");
    pod.metadata
        .labels
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k.starts_with(LABEL_PREFIX))
        .collect()
}

/// A test's namespace on `server`: its admin client, name and pods API.
struct Space {
    admin: Client,
    ns: String,
    pods: Api<Pod>,
}

/// Creates a namespace named after `name` with running, ready pods `pods` (bound to a node
/// when `node`, see [`pod`]).
async fn space(server: &Server, name: &str, pods: &[&str], node: bool) -> Space {
    let admin = admin(server).await;
    let ns = unique(name);
    namespace(&admin, &ns).await;
    let api: Api<Pod> = Api::namespaced(admin.clone(), &ns);
    for p in pods {
        pod(&api, p, node).await;
    }
    Space {
        admin,
        ns,
        pods: api,
    }
}

/// Deletes every pod of `ns` at once (grace period 0: nothing else would finish them).
async fn cleanup(client: &Client, ns: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let _ = pods
        .delete_collection(
            &DeleteParams::default().grace_period(0),
            &ListParams::default(),
        )
        .await;
}

struct Node {
    system: ActorSystem,
    remote: Arc<Remote>,
    cluster: Cluster,
}

impl Node {
    fn id(&self) -> String {
        self.cluster.self_member().id.clone()
    }
    fn address(&self) -> String {
        self.remote.address().to_string()
    }
}

/// A Rust member of `cluster` on pod `pod` of `ns`, with `config` as its client config.
fn start_node(cluster: &str, config: kube::Config, ns: &str, pod: &str, kinds: &[&str]) -> Node {
    let config =
        KubernetesConfig::new(config, ns, pod).with_retry_interval(Duration::from_millis(200));
    member(cluster, config, kinds)
}

/// A Rust member of `cluster` on the Kubernetes provider with `config`.
fn member(cluster: &str, config: KubernetesConfig, kinds: &[&str]) -> Node {
    let system = ActorSystem::new();
    let remote = Remote::start(
        &system,
        RemoteConfig::new("127.0.0.1", 0)
            .with_wire_variant(WireVariant::Legacy2024)
            .with_serialization(serialization()),
    )
    .expect("remote starts");
    let provider = KubernetesProvider::new(config);
    let config = ClusterConfig::new(cluster, provider, DistHashIdentityLookup::new())
        .with_kinds(kinds.iter().map(|k| Kind::new(*k, hello_props())));
    let cluster = Cluster::start_member(&system, &remote, config).expect("cluster starts");
    Node {
        system,
        remote,
        cluster,
    }
}

async fn stop_node(n: Node) {
    n.cluster.shutdown(true).await;
    n.remote.shutdown();
    n.system.shutdown();
}

async fn await_ids(node: &Node, ids: &[String], present: bool) -> bool {
    let ids = ids.to_vec();
    node.cluster
        .member_list()
        .wait_until(TOPOLOGY, move |t| {
            ids.iter().all(|id| t.member(id).is_some() == present)
        })
        .await
}

async fn assert_ids(nodes: &[&Node], ids: &[String], present: bool) {
    for n in nodes {
        assert!(
            await_ids(n, ids, present).await,
            "{}: wanted {ids:?} present={present}, has {:?}",
            n.id(),
            n.cluster.member_list().members()
        );
    }
}

async fn hello(node: &Node, kind: &str, identity: &str) -> Result<HelloResponse, String> {
    node.cluster
        .request_as::<HelloResponse, _>(
            identity,
            kind,
            HelloRequest { name: "k8s".into() },
            &CallOptions::default().with_timeout(Duration::from_secs(20)),
        )
        .await
        .map_err(|e| e.to_string())
}

fn identities(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Where each identity answers from, asked through `node`.
async fn owners(node: &Node, ids: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for id in ids {
        let r = hello(node, HELLO, id)
            .await
            .unwrap_or_else(|e| panic!("{id} via {}: {e}", node.id()));
        out.insert(id.clone(), r.address);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_rust_members_on_their_own_pods_share_one_topology_and_grains() {
    let Some(server) = server() else { return };
    let Space { admin, ns, pods } = space(&server, "three", &["a", "b", "c"], true).await;
    let config = kube_config(&server, &server.token, &ns).await;
    let cluster = "three";
    let a = start_node(cluster, config.clone(), &ns, "a", &[HELLO]);
    let b = start_node(cluster, config.clone(), &ns, "b", &[HELLO, "bonly"]);
    let c = start_node(cluster, config.clone(), &ns, "c", &[HELLO]);
    let ids = vec![a.id(), b.id(), c.id()];
    assert_ids(&[&a, &b, &c], &ids, true).await;
    // Each sees the others at their pod IP and labelled port, with their kinds.
    let seen_b = a
        .cluster
        .member_list()
        .topology()
        .member(&b.id())
        .cloned()
        .unwrap();
    assert_eq!(seen_b.address(), b.address());
    assert_eq!(seen_b.kinds, ["bonly", HELLO]);

    // Go's label dialect on each pod, the member id being the actor system id.
    let port = b.address().rsplit(':').next().unwrap().to_string();
    let want: BTreeMap<String, String> = [
        ("cluster.proto.actor/cluster", cluster.to_string()),
        ("cluster.proto.actor/port", port),
        ("cluster.proto.actor/member-id", b.system.id().to_string()),
        ("cluster.proto.actor/kind-hello", "true".into()),
        ("cluster.proto.actor/kind-bonly", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(proto_labels(&pods, "b").await, want);

    // One owner per identity from every member, each member owning some.
    let many = identities("id", 60);
    let from_a = owners(&a, &many).await;
    assert_eq!(owners(&b, &many).await, from_a);
    assert_eq!(owners(&c, &many).await, from_a);
    let at: BTreeSet<&String> = from_a.values().collect();
    assert_eq!(at.len(), 3, "60 identities all on {at:?}");
    let r = hello(&c, "bonly", "x").await.expect("bonly call");
    assert_eq!(r.address, b.address());

    // Someone removes a's cluster label while a lives: a labels its pod again.
    let unlabel =
        serde_json::json!({"metadata": {"labels": {"cluster.proto.actor/cluster": null}}});
    pods.patch("a", &PatchParams::default(), &Patch::Merge(&unlabel))
        .await
        .expect("unlabel a");
    let deadline = Instant::now() + TOPOLOGY;
    while !proto_labels(&pods, "a")
        .await
        .contains_key("cluster.proto.actor/cluster")
    {
        assert!(Instant::now() < deadline, "a never labelled its pod again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ids(&[&b, &c], &ids, true).await;

    // c's pod stops being ready: c leaves the others' lists; ready again: back.
    set_ready(&pods, "c", false).await;
    assert_ids(&[&a, &b], &ids[2..], false).await;
    set_ready(&pods, "c", true).await;
    assert_ids(&[&a, &b], &ids, true).await;

    // b leaves gracefully: its labels go (the pod's own label stays), a and c drop it.
    let b_id = b.id();
    stop_node(b).await;
    assert!(proto_labels(&pods, "b").await.is_empty());
    let app = pods.get("b").await.unwrap().metadata.labels.unwrap();
    assert_eq!(app.get("app").map(String::as_str), Some("protoactor-test"));
    assert_ids(&[&a, &c], std::slice::from_ref(&b_id), false).await;

    // c's pod is deleted: it stays, terminating (no kubelet confirms), and c leaves at once.
    pods.delete("c", &DeleteParams::default())
        .await
        .expect("delete c");
    let terminating = pods.get("c").await.expect("c still there");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_ids(&[&a], &ids[2..], false).await;
    let r = hello(&a, HELLO, "alone").await.expect("a alone serves");
    assert_eq!(r.address, a.address());

    stop_node(a).await;
    stop_node(c).await;
    cleanup(&admin, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pod_takes_its_member_out_and_its_grains_move() {
    let Some(server) = server() else { return };
    let Space { admin, ns, pods } = space(&server, "deleted", &["a", "b", "c"], false).await;
    let config = kube_config(&server, &server.token, &ns).await;
    let a = start_node("deleted", config.clone(), &ns, "a", &[HELLO]);
    let b = start_node("deleted", config.clone(), &ns, "b", &[HELLO]);
    let c = start_node("deleted", config.clone(), &ns, "c", &[HELLO]);
    let ids = vec![a.id(), b.id(), c.id()];
    assert_ids(&[&a, &b, &c], &ids, true).await;
    let many = identities("g", 60);
    let before = owners(&a, &many).await;
    let on_c: Vec<String> = many
        .iter()
        .filter(|id| before[*id] == c.address())
        .cloned()
        .collect();
    assert!(!on_c.is_empty(), "c owns none of 60");

    // An unscheduled pod is deleted at once: c leaves a's and b's lists.
    pods.delete("c", &DeleteParams::default())
        .await
        .expect("delete c");
    assert_ids(&[&a, &b], &ids[2..], false).await;
    let alive: BTreeSet<String> = [a.address(), b.address()].into();
    for id in &on_c {
        let r = hello(&a, HELLO, id).await.expect("call after c left");
        assert!(
            alive.contains(&r.address),
            "{id} answered from {}",
            r.address
        );
        let again = hello(&b, HELLO, id).await.expect("call after c left");
        assert_eq!(again.address, r.address, "{id}: a and b disagree");
    }
    // The others' activations stayed where they were.
    for id in many.iter().filter(|id| before[*id] != c.address()).take(10) {
        assert_eq!(hello(&b, HELLO, id).await.unwrap().address, before[id]);
    }
    for n in [a, b, c] {
        stop_node(n).await;
    }
    cleanup(&admin, &ns).await;
}

/// An API server of this test alone (the script on other ports and directory).
struct OwnServer {
    port: u16,
    dir: PathBuf,
}

impl OwnServer {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/start-kube-apiserver.sh")
    }

    fn run(&self, arg: Option<&str>) -> String {
        let mut cmd = Command::new("bash");
        cmd.arg(Self::script())
            .env("PROTOACTOR_KUBE_PORT", self.port.to_string())
            .env("PROTOACTOR_KUBE_DIR", &self.dir);
        if let Some(a) = arg {
            cmd.arg(a);
        }
        let out = cmd.output().expect("start-kube-apiserver.sh runs");
        assert!(
            out.status.success(),
            "start-kube-apiserver.sh {arg:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn start() -> (OwnServer, Server) {
        // Three consecutive free ports (API server, etcd client, etcd peer).
        let port = loop {
            let p = free_port();
            if p < 65533
                && (1..=2).all(|i| std::net::TcpListener::bind(("127.0.0.1", p + i)).is_ok())
            {
                break p;
            }
        };
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("kube-restart-{}-{port}", std::process::id()));
        let s = OwnServer { port, dir };
        let out = s.run(None);
        let get = |k: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("export {k}=")))
                .unwrap_or_else(|| panic!("no {k} in {out}"))
                .to_string()
        };
        let server = Server {
            url: get("PROTOACTOR_KUBE_URL"),
            token: get("PROTOACTOR_KUBE_TOKEN"),
            ca: get("PROTOACTOR_KUBE_CA").into(),
        };
        (s, server)
    }

    fn etcd_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port + 1)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .env("PROTOACTOR_KUBE_PORT", self.port.to_string())
            .env("PROTOACTOR_KUBE_DIR", &self.dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Collects the provider's [`KubernetesApiStatus`] events of `node`.
fn statuses(node: &Node) -> std::sync::mpsc::Receiver<KubernetesApiStatus> {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = parking_lot::Mutex::new(tx);
    let _ = node
        .system
        .event_stream()
        .subscribe_to::<KubernetesApiStatus, _>(move |s| {
            let _ = tx.lock().send(s.clone());
        });
    rx
}

/// Waits (off the runtime's threads) for a status with `reachable`.
async fn await_status(rx: &mut std::sync::mpsc::Receiver<KubernetesApiStatus>, reachable: bool) {
    let deadline = Instant::now() + TOPOLOGY;
    loop {
        match rx.try_recv() {
            Ok(s) if s.reachable == reachable => return,
            Ok(_) => continue,
            Err(_) => {
                assert!(
                    Instant::now() < deadline,
                    "no KubernetesApiStatus reachable={reachable}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_keep_serving_while_the_api_server_restarts_and_then_watch_again() {
    if server().is_none() {
        return;
    }
    let (own, server) = OwnServer::start();
    let Space { admin: _, ns, pods } = space(&server, "restart", &["a", "b"], false).await;
    let config = kube_config(&server, &server.token, &ns).await;
    let a = start_node("restart", config.clone(), &ns, "a", &[HELLO]);
    let b = start_node("restart", config.clone(), &ns, "b", &[HELLO]);
    let mut a_status = statuses(&a);
    let ids = vec![a.id(), b.id()];
    assert_ids(&[&a, &b], &ids, true).await;
    let grains = identities("r", 20);
    let before = owners(&a, &grains).await;

    // The API server goes away: the members say so, keep their lists and serve.
    own.run(Some("stop-apiserver"));
    await_status(&mut a_status, false).await;
    for (g, addr) in &before {
        let r = hello(&b, HELLO, g)
            .await
            .expect("call while the API server is down");
        assert_eq!(&r.address, addr, "{g} moved while the API server was down");
    }
    assert_eq!(a.cluster.member_list().members().len(), 2);

    // Meanwhile b's pod disappears behind the API server's back (straight from etcd, and
    // the history compacted): no watch can replay that deletion, only a new list shows it.
    let mut etcd = etcd_client::Client::connect([own.etcd_endpoint()], None)
        .await
        .expect("etcd");
    let deleted = etcd
        .delete(format!("/registry/pods/{ns}/b"), None)
        .await
        .expect("delete from etcd");
    assert_eq!(
        deleted.deleted(),
        1,
        "b's pod was not at /registry/pods/{ns}/b"
    );
    let revision = deleted.header().unwrap().revision();
    etcd.compact(revision, None).await.expect("compact");

    // Back: a says so, lists again and drops b; the watch works again (a new member is seen).
    own.run(None);
    await_status(&mut a_status, true).await;
    assert_ids(&[&a], &ids[1..], false).await;
    pod(&pods, "c", false).await;
    let c = start_node("restart", config.clone(), &ns, "c", &[HELLO]);
    let ac = vec![a.id(), c.id()];
    assert_ids(&[&a, &c], &ac, true).await;
    let mut at = BTreeSet::new();
    for g in identities("after", 30) {
        let r = hello(&c, HELLO, &g).await.expect("call after the restart");
        assert_eq!(hello(&a, HELLO, &g).await.unwrap().address, r.address);
        at.insert(r.address);
    }
    assert_eq!(at.len(), 2, "30 identities all on {at:?}");
    for n in [a, b, c] {
        n.cluster.shutdown(false).await;
        n.remote.shutdown();
        n.system.shutdown();
    }
    drop(own);
}

/// The YAML documents of the deployment guide (docs/kubernetes.md), with the RoleBinding's
/// subject in namespace `ns`.
fn guide_manifests(ns: &str) -> Vec<serde_json::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/kubernetes.md");
    let text = std::fs::read_to_string(&path).expect("docs/kubernetes.md");
    let mut docs = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        match (&mut block, line.trim_end()) {
            (None, "```yaml") => block = Some(String::new()),
            (Some(b), "```") => {
                for doc in b.split("\n---\n") {
                    let doc = doc.replace("namespace: default", &format!("namespace: {ns}"));
                    docs.push(serde_saphyr::from_str::<serde_json::Value>(&doc).expect("YAML"));
                }
                block = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            _ => {}
        }
    }
    docs
}

/// Server-side applies `doc` in `ns` (`dry_run`: validated and admitted, not stored).
async fn apply(client: &Client, ns: &str, doc: &serde_json::Value, dry_run: bool) {
    let (group, version) = match doc["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", doc["apiVersion"].as_str().unwrap()),
    };
    let gvk = GroupVersionKind::gvk(group, version, doc["kind"].as_str().unwrap());
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk));
    let mut params = PatchParams::apply("protoactor-docs-test");
    params.field_validation = Some(kube::api::ValidationDirective::Strict);
    if dry_run {
        params = params.dry_run();
    }
    let name = doc["metadata"]["name"].as_str().unwrap();
    api.patch(name, &params, &Patch::Apply(doc))
        .await
        .unwrap_or_else(|e| panic!("{} {name} refused: {e}", gvk.kind));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployment_guide_manifests_are_accepted_by_the_api_server() {
    let Some(server) = server() else { return };
    let Space { admin, ns, .. } = space(&server, "guide", &[], false).await;
    let docs = guide_manifests(&ns);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["ServiceAccount", "Role", "RoleBinding", "Deployment"]
    );
    for d in &docs {
        apply(&admin, &ns, d, true).await;
    }
    // Dry run: nothing was stored.
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    assert!(sas.get_opt("protoactor").await.unwrap().is_none());
}

/// Applies the guide's ServiceAccount, Role and RoleBinding in `ns` and returns a token of
/// that service account (TokenRequest), which has exactly the Role's permissions.
async fn role_token(admin: &Client, ns: &str) -> String {
    for d in guide_manifests(ns)
        .iter()
        .filter(|d| d["kind"] != "Deployment")
    {
        apply(admin, ns, d, false).await;
    }
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    sas.create_token_request("protoactor", &PostParams::default(), &request)
        .await
        .expect("token request")
        .status
        .expect("token")
        .token
        .expect("token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_role_is_enough() {
    let Some(server) = server() else { return };
    let Space { admin, ns, pods } = space(&server, "rbac", &["a", "b"], false).await;
    let token = role_token(&admin, &ns).await;
    let config = kube_config(&server, &token, &ns).await;

    // The token is that narrow: no secrets, no pod deletion, no other namespace.
    let limited = Client::try_from(config.clone()).unwrap();
    let forbidden = |r: Result<(), kube::Error>, what: &str| match r {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("{what}: wanted 403, got {other:?}"),
    };
    let secrets: Api<Secret> = Api::namespaced(limited.clone(), &ns);
    forbidden(
        secrets.list(&ListParams::default()).await.map(|_| ()),
        "list secrets",
    );
    let own_pods: Api<Pod> = Api::namespaced(limited.clone(), &ns);
    forbidden(
        own_pods
            .delete("a", &DeleteParams::default())
            .await
            .map(|_| ()),
        "delete a pod",
    );
    let other: Api<Pod> = Api::namespaced(limited, "default");
    forbidden(
        other.list(&ListParams::default()).await.map(|_| ()),
        "list pods elsewhere",
    );

    // With it, members register, watch, serve and deregister.
    let a = start_node("rbac", config.clone(), &ns, "a", &[HELLO]);
    let b = start_node("rbac", config.clone(), &ns, "b", &[HELLO]);
    let ids = vec![a.id(), b.id()];
    assert_ids(&[&a, &b], &ids, true).await;
    let at: BTreeSet<String> = owners(&a, &identities("x", 30))
        .await
        .into_values()
        .collect();
    assert_eq!(at.len(), 2, "30 identities all on {at:?}");
    let b_id = b.id();
    stop_node(b).await;
    assert!(
        proto_labels(&pods, "b").await.is_empty(),
        "b's labels stayed"
    );
    assert_ids(&[&a], &[b_id], false).await;
    stop_node(a).await;
    cleanup(&admin, &ns).await;
}

/// True when this process may create mount and UTS namespaces (root).
fn can_unshare() -> bool {
    Command::new("unshare")
        .args(["--mount", "--uts", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_and_rust_members_share_the_pods_and_call_each_other() {
    let Some(server) = server() else { return };
    if !can_unshare() {
        assert!(
            std::env::var("PROTOACTOR_INTEROP").as_deref() != Ok("required"),
            "the Go Kubernetes member needs `unshare --mount --uts` (root)"
        );
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!! SKIPPED: Go Kubernetes member not run: `unshare --mount --uts` is not permitted (run as root) !!!!!\n"
        );
        return;
    }
    let Space { admin, ns, pods } =
        space(&server, "mixed", &["go", "rust-a", "rust-b"], false).await;
    // Go's in-cluster files: the Role's token, the CA, the namespace.
    let token = role_token(&admin, &ns).await;
    let sa = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sa-{ns}"));
    std::fs::create_dir_all(&sa).unwrap();
    std::fs::write(sa.join("token"), &token).unwrap();
    std::fs::copy(&server.ca, sa.join("ca.crt")).unwrap();
    std::fs::write(sa.join("namespace"), &ns).unwrap();

    let cluster = "mixed";
    let Some(mut go) =
        MemberProcess::go_kubernetes("go", cluster, &[HELLO, "goonly"], &sa, "go", server.port())
    else {
        return;
    };
    // Rust member a on an explicit config, b in its "pod" on the in-cluster config.
    let config = kube_config(&server, &token, &ns).await;
    let a = start_node(cluster, config.clone(), &ns, "rust-a", &[HELLO, "rustonly"]);
    let mut b = tokio::task::block_in_place(|| {
        MemberProcess::rust_in_pod(
            "rust-b",
            "rust_member_child",
            cluster,
            &[HELLO, "rustonly"],
            &sa,
            "rust-b",
            server.port(),
        )
    });

    // Go's member id is the UUID its provider put on its pod.
    let deadline = Instant::now() + TOPOLOGY;
    let go_id = loop {
        if let Some(id) = proto_labels(&pods, "go")
            .await
            .get("cluster.proto.actor/member-id")
        {
            break id.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the Go member never labelled its pod"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ids = vec![go_id.clone(), a.id(), b.id.clone()];
    assert_ids(&[&a], &ids, true).await;
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let seen_by_b = tokio::task::block_in_place(|| b.await_members(&id_refs, TOPOLOGY));
    let seen_by_go = tokio::task::block_in_place(|| go.await_members(&id_refs, TOPOLOGY));
    assert_eq!(
        seen_by_b, seen_by_go,
        "Go and Rust see different topologies"
    );
    // b labelled its pod (found from its host name and namespace file) with its id.
    assert_eq!(
        proto_labels(&pods, "rust-b")
            .await
            .get("cluster.proto.actor/member-id"),
        Some(&b.id)
    );
    let rust_in_go = seen_by_go
        .iter()
        .find(|m| m.id == a.id())
        .expect("a in Go's list");
    assert_eq!(rust_in_go.address, a.address());
    assert_eq!(rust_in_go.kinds, [HELLO, "rustonly"]);
    let go_in_rust = a
        .cluster
        .member_list()
        .topology()
        .member(&go_id)
        .cloned()
        .unwrap();
    assert_eq!(go_in_rust.address(), go.address);

    // Calls both ways, and the same owners from both sides.
    let r = tokio::task::block_in_place(|| go.call("rustonly", "r1", "gopher"))
        .expect("Go calls a Rust grain");
    assert!(
        [a.address(), b.address.clone()].contains(&r.address),
        "answered from {}",
        r.address
    );
    assert_eq!(r.message, "hello gopher from rustonly/r1");
    let r = hello(&a, "goonly", "g1")
        .await
        .expect("Rust calls a Go grain");
    assert_eq!(r.address, go.address);
    let many = identities("id", 60);
    let go_owners = tokio::task::block_in_place(|| go.owners(HELLO, &many));
    for (id, (addr, _)) in &go_owners {
        assert_eq!(&hello(&a, HELLO, id).await.unwrap().address, addr, "{id}");
    }
    tokio::task::block_in_place(|| assert_same_owners(&mut b, HELLO, &many, &go_owners));
    let r = tokio::task::block_in_place(|| b.call("goonly", "g2", "crab"))
        .expect("the in-cluster Rust member calls a Go grain");
    assert_eq!(r.address, go.address);
    let at: BTreeSet<&String> = go_owners.values().map(|(a, _)| a).collect();
    assert_eq!(at.len(), 3, "60 identities all on {at:?}");

    // Go leaves gracefully (its provider removes its labels): the Rust members drop it.
    let status = tokio::task::block_in_place(|| go.stop());
    assert!(status.success(), "the Go member exited with {status}");
    assert!(proto_labels(&pods, "go").await.is_empty());
    assert_ids(&[&a], std::slice::from_ref(&go_id), false).await;
    tokio::task::block_in_place(|| b.await_absent(&[&go_id], TOPOLOGY));
    // The in-cluster Rust member leaves gracefully: its labels go, a drops it.
    let b_id = b.id.clone();
    let status = tokio::task::block_in_place(|| b.stop());
    assert!(status.success(), "the Rust member exited with {status}");
    assert!(proto_labels(&pods, "rust-b").await.is_empty());
    assert_ids(&[&a], &[b_id], false).await;
    stop_node(a).await;
    let _ = std::fs::remove_dir_all(&sa);
    cleanup(&admin, &ns).await;
}
