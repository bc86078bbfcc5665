//! The management API (feature `management`): read-only JSON about a running cluster, served
//! by any member over HTTP (axum) on its own address, under a configurable base path, with an
//! optional bearer token.
//!
//! | route | answer |
//! |---|---|
//! | `GET {base}/cluster/members` | `{self, members: [{id, host, port, address, kinds, heartbeat_age_ms}], blocked}` |
//! | `GET {base}/cluster/topology` | `{hash, members: [id]}` |
//! | `GET {base}/cluster/gossip` | `{<member id>: {<key>: sequence number}}` for the built-in keys |
//! | `GET {base}/cluster/activations?kind=K&offset=N&limit=M` | `{members: {<member id>: {<kind>: count}}}` from gossip heartbeats, and `local: {total, offset, limit, identities: [{kind, identity, pid}]}`: this member's activations (of kind `K`), sorted, one page (default limit 100, at most 1000) |
//! | `GET {base}/cluster/requests` | `{requests: [{kind, method, count, errors, mean_ms, p50_ms, p99_ms}]}`: this member's grain calls since the API started |
//! | `GET {base}/actors?pattern=P&member=host:port` | `{member, ids}`: processes whose id contains `P`; another member is asked with the remote `ListProcesses` RPC |
//! | `GET {base}/actors/{id}?member=host:port` | `{member, id, diagnostics}` (remote `GetProcessDiagnostics`), 404 if there is none |
//! | `GET {base}/cluster/events` | server-sent events: one `topology` event (`{hash, members}`) now and on every change |
//! | `GET {base}/metrics` | Prometheus text: members, activations per kind per member, processes, dead letters since start, and the histogram `protocluster_grain_request_duration_seconds{kind,method}` of this member's grain calls (with `protocluster_grain_request_errors_total`) |
//! | `GET {base}/dashboard` | one HTML page (embedded, nothing fetched elsewhere) showing the above live |
//!
//! Request latency is recorded (per call: two clock reads and three atomic additions) only
//! while a management API of the cluster runs.
//!
//! With a token set, every route answers 401 unless the request carries
//! `Authorization: Bearer <token>` (or `?token=<token>`, for a browser's `EventSource`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use protoactor::DeadLetterEvent;
use protoactor_remote::remote_proto::remoting_client::RemotingClient;
use protoactor_remote::remote_proto::{
    GetProcessDiagnosticsRequest, ListProcessesMatchType, ListProcessesRequest,
};
use protoactor_remote::PidExt;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::cluster::Cluster;
use crate::error::ClusterError;
use crate::gossip::wire::{HEARTBEAT_KEY, LEFT_KEY, TOPOLOGY_KEY};
use crate::gossip::Gossiper;
use crate::proto::{GossipKeyValue, MemberHeartbeat};

/// Where and how the management API is served.
#[derive(Debug, Clone)]
pub struct ManagementConfig {
    /// The address to listen on (port 0: any free port).
    pub address: SocketAddr,
    /// The prefix of every route (`""` or `/mgmt`; no trailing `/`).
    pub base_path: String,
    /// When set, requests need `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl ManagementConfig {
    /// Serves on `address` at the root path, without a token.
    pub fn new(address: SocketAddr) -> Self {
        ManagementConfig {
            address,
            base_path: String::new(),
            token: None,
        }
    }

    /// Serves every route under `base_path` (for a reverse proxy).
    pub fn with_base_path(mut self, base_path: impl Into<String>) -> Self {
        let p = base_path.into();
        let p = p.trim_end_matches('/');
        self.base_path = if p.is_empty() || p.starts_with('/') {
            p.to_string()
        } else {
            format!("/{p}")
        };
        self
    }

    /// Requires `Authorization: Bearer <token>` on every request.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
}

/// A running management API; stops when [`ManagementServer::stop`] is called or the value
/// is dropped.
#[must_use = "dropping the ManagementServer stops the management API; keep it while it should serve"]
pub struct ManagementServer {
    address: SocketAddr,
    base_path: String,
    stop: Option<oneshot::Sender<()>>,
}

impl ManagementServer {
    /// Binds `config.address` and serves `cluster`'s management API on its actor system's
    /// runtime.
    pub fn start(cluster: &Cluster, config: ManagementConfig) -> Result<Self, ClusterError> {
        let listener = std::net::TcpListener::bind(config.address).map_err(|e| {
            ClusterError::Spawn(format!(
                "management API: cannot listen on {}: {e}",
                config.address
            ))
        })?;
        let address = listener
            .local_addr()
            .map_err(|e| ClusterError::Spawn(format!("management API: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ClusterError::Spawn(format!("management API: {e}")))?;
        let routes = Router::new()
            .route("/cluster/members", get(members))
            .route("/cluster/requests", get(requests))
            .route("/cluster/topology", get(topology))
            .route("/cluster/gossip", get(gossip))
            .route("/cluster/activations", get(activations))
            .route("/cluster/events", get(events))
            .route("/actors", get(actors))
            .route("/actors/{id}", get(actor))
            .route("/dashboard", get(dashboard))
            .route("/metrics", get(metrics));
        let routes = if config.base_path.is_empty() {
            routes
        } else {
            Router::new().nest(&config.base_path, routes)
        };
        let token: Arc<Option<String>> = Arc::new(config.token.clone());
        let dead_letters = Arc::new(AtomicU64::new(0));
        let counted = dead_letters.clone();
        let subscription = cluster
            .system()
            .event_stream()
            .subscribe_to::<DeadLetterEvent, _>(move |_| {
                counted.fetch_add(1, AtomicOrdering::Relaxed);
            });
        let app = routes
            .layer(axum::middleware::from_fn(
                move |req: Request, next: Next| {
                    let token = token.clone();
                    async move { authorize(token.as_deref(), req, next).await }
                },
            ))
            .with_state(Shared {
                cluster: cluster.downgrade(),
                dead_letters: dead_letters.clone(),
            });
        let (stop, stopped) = oneshot::channel::<()>();
        let system = cluster.system().clone();
        let events = system.clone();
        cluster.request_latencies().start_recording();
        let recording = cluster.downgrade();
        system.runtime().spawn(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "management API: cannot use the listener");
                    return;
                }
            };
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "management API failed");
            }
            events.event_stream().unsubscribe(&subscription);
            if let Some(c) = recording.upgrade() {
                c.request_latencies().stop_recording();
            }
        });
        tracing::info!(%address, base_path = %config.base_path, "management API started");
        Ok(ManagementServer {
            address,
            base_path: config.base_path,
            stop: Some(stop),
        })
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://<address><base path>`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.address, self.base_path)
    }

    /// Stops serving.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Drop for ManagementServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// The handlers' state: the cluster, weakly (the API must not keep a shut-down cluster),
/// and the dead letters counted since the API started.
#[derive(Clone)]
struct Shared {
    cluster: crate::cluster::WeakCluster,
    dead_letters: Arc<AtomicU64>,
}

impl Shared {
    fn upgrade(&self) -> Option<Cluster> {
        self.cluster.upgrade()
    }
}

async fn authorize(token: Option<&str>, req: Request, next: Next) -> Response {
    if let Some(token) = token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // A browser's EventSource cannot set headers: `?token=` is accepted too.
        let in_query = query_param(req.uri().query(), "token");
        if given != Some(token) && in_query.as_deref() != Some(token) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a bearer token is required",
            )
                .into_response();
        }
    }
    next.run(req).await
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn gone() -> Response {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": "the cluster is shut down"}),
    )
}

/// Every member's gossip value of `key` (none on a client, which does not gossip).
fn gossip_state(c: &Cluster, key: &str) -> std::collections::HashMap<String, GossipKeyValue> {
    c.system()
        .extension::<Gossiper>()
        .map(|g| g.get_state(key))
        .unwrap_or_default()
}

/// Each member's last heartbeat (by member id), as gossip holds it.
fn heartbeats(c: &Cluster) -> BTreeMap<String, (i64, MemberHeartbeat)> {
    gossip_state(c, HEARTBEAT_KEY)
        .into_iter()
        .filter_map(|(id, kv)| {
            let hb = kv
                .value
                .as_ref()
                .and_then(|any| prost::Message::decode(any.value.as_slice()).ok())?;
            Some((id, (kv.local_timestamp_unix_milliseconds, hb)))
        })
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn members(State(w): State<Shared>) -> Response {
    let Some(c) = w.upgrade() else { return gone() };
    let beats = heartbeats(&c);
    let now = now_ms();
    let topology = c.member_list().topology();
    let members: Vec<Value> = topology
        .members()
        .map(|m| {
            json!({
                "id": m.id,
                "host": m.host,
                "port": m.port,
                "address": format!("{}:{}", m.host, m.port),
                "kinds": m.kinds,
                "heartbeat_age_ms": beats.get(&m.id).map(|(at, _)| (now - at).max(0)),
            })
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({
            "self": c.self_member().id,
            "members": members,
            "blocked": c.member_list().blocked(),
        }),
    )
}

fn topology_json(c: &Cluster) -> Value {
    let t = c.member_list().topology();
    json!({
        "hash": t.hash().to_string(),
        "members": t.members().map(|m| m.id.clone()).collect::<Vec<_>>(),
    })
}

async fn topology(State(w): State<Shared>) -> Response {
    let Some(c) = w.upgrade() else { return gone() };
    json_response(StatusCode::OK, topology_json(&c))
}

async fn gossip(State(w): State<Shared>) -> Response {
    let Some(c) = w.upgrade() else { return gone() };
    let mut out: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for key in [TOPOLOGY_KEY, HEARTBEAT_KEY, LEFT_KEY] {
        for (member, kv) in gossip_state(&c, key) {
            out.entry(member)
                .or_default()
                .insert(key.to_string(), kv.sequence_number);
        }
    }
    json_response(StatusCode::OK, json!(out))
}

/// Activations per kind per member: gossip heartbeats, and this member's current counts.
fn activations_per_member(c: &Cluster) -> BTreeMap<String, BTreeMap<String, i64>> {
    let mut per_member: BTreeMap<String, BTreeMap<String, i64>> = heartbeats(c)
        .into_iter()
        .map(|(id, (_, hb))| {
            let counts = hb
                .actor_statistics
                .map(|s| s.actor_count.into_iter().collect())
                .unwrap_or_default();
            (id, counts)
        })
        .collect();
    // This member's own counts are current, not as of its last heartbeat.
    per_member.insert(
        c.self_member().id.clone(),
        c.activation_counts().into_iter().collect(),
    );
    per_member
}

/// The default and the largest page of `/cluster/activations`' identities.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

async fn activations(State(w): State<Shared>, req: Request) -> Response {
    let Some(c) = w.upgrade() else { return gone() };
    let query = req.uri().query();
    // A bad parameter is the message of a 400.
    let number = |name: &str| -> Result<Option<usize>, String> {
        match query_param(query, name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("{name} must be a non-negative integer, not {v:?}")),
        }
    };
    let (offset, limit) = match (number("offset"), number("limit")) {
        (Ok(o), Ok(l)) => (o.unwrap_or(0), l.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE)),
        (Err(e), _) | (_, Err(e)) => {
            return json_response(StatusCode::BAD_REQUEST, json!({ "error": e }))
        }
    };
    let kind = query_param(query, "kind").filter(|k| !k.is_empty());
    let local = c.local_activations(kind.as_deref());
    let identities: Vec<Value> = local
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(ci, pid)| json!({"kind": ci.kind, "identity": ci.identity, "pid": pid}))
        .collect();
    json_response(
        StatusCode::OK,
        json!({
            "members": activations_per_member(&c),
            "local": {
                "member": c.self_member().id,
                "total": local.len(),
                "offset": offset,
                "limit": limit,
                "identities": identities,
            },
        }),
    )
}

/// Milliseconds, rounded to microseconds (for the JSON).
fn ms(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e3
}

async fn requests(State(w): State<Shared>) -> Response {
    let Some(c) = w.upgrade() else { return gone() };
    let rows: Vec<Value> = c
        .request_latencies()
        .snapshot()
        .iter()
        .map(|s| {
            json!({
                "kind": s.kind,
                "method": s.method,
                "count": s.count,
                "errors": s.errors,
                "mean_ms": (s.count > 0).then(|| ms(s.sum_seconds / s.count as f64)),
                "p50_ms": s.quantile(0.5).map(ms),
                "p99_ms": s.quantile(0.99).map(ms),
            })
        })
        .collect();
    json_response(StatusCode::OK, json!({ "requests": rows }))
}

/// The value of `name` in the request's query string (percent-decoding `%XX` and `+`).
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The member to ask: `member=host:port` if given and not this node, else this node (`None`).
fn other_member(c: &Cluster, query: Option<&str>) -> Result<Option<String>, Box<Response>> {
    match query_param(query, "member") {
        None => Ok(None),
        Some(m) if m == c.address() => Ok(None),
        Some(m) if c.member_list().topology().contains_address(&m) => Ok(Some(m)),
        Some(m) => Err(Box::new(json_response(
            StatusCode::NOT_FOUND,
            json!({"error": format!("{m} is not a member of the current topology")}),
        ))),
    }
}

async fn actors(State(w): State<Shared>, req: Request) -> Response {
    let Some(c) = w.upgrade() else { return gone() };
    let query = req.uri().query();
    let pattern = query_param(query, "pattern").unwrap_or_default();
    let member = match other_member(&c, query) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let (address, ids) = match member {
        None => {
            let mut ids: Vec<String> = c
                .system()
                .registry()
                .ids()
                .into_iter()
                .filter(|id| id.contains(&pattern))
                .collect();
            ids.sort();
            (c.address().to_string(), ids)
        }
        Some(m) => {
            let req = ListProcessesRequest {
                pattern,
                r#type: ListProcessesMatchType::MatchPartOfString as i32,
            };
            match remote_client(&m).await {
                Ok(mut client) => match client.list_processes(req).await {
                    Ok(r) => (m, r.into_inner().pids.into_iter().map(|p| p.id).collect()),
                    Err(s) => return rpc_error(&m, s),
                },
                Err(r) => return *r,
            }
        }
    };
    json_response(StatusCode::OK, json!({"member": address, "ids": ids}))
}

async fn actor(State(w): State<Shared>, Path(id): Path<String>, req: Request) -> Response {
    let Some(c) = w.upgrade() else { return gone() };
    let member = match other_member(&c, req.uri().query()) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let address = member.clone().unwrap_or_else(|| c.address().to_string());
    let diagnostics = match member {
        None => match c.system().registry().get_local(&id) {
            Some(p) => p.diagnostics(),
            None => {
                return json_response(
                    StatusCode::NOT_FOUND,
                    json!({"error": format!("no process {id:?} on {address}")}),
                )
            }
        },
        Some(m) => {
            let pid = protoactor::Pid::new(m.as_str(), id.as_str()).to_proto();
            let req = GetProcessDiagnosticsRequest { pid: Some(pid) };
            match remote_client(&m).await {
                Ok(mut client) => match client.get_process_diagnostics(req).await {
                    Ok(r) => r.into_inner().diagnostics_string,
                    Err(s) => return rpc_error(&m, s),
                },
                Err(r) => return *r,
            }
        }
    };
    json_response(
        StatusCode::OK,
        json!({"member": address, "id": id, "diagnostics": diagnostics}),
    )
}

async fn remote_client(
    member: &str,
) -> Result<RemotingClient<tonic::transport::Channel>, Box<Response>> {
    RemotingClient::connect(format!("http://{member}"))
        .await
        .map_err(|e| {
            Box::new(json_response(
                StatusCode::BAD_GATEWAY,
                json!({"error": format!("cannot reach {member}: {e}")}),
            ))
        })
}

fn rpc_error(member: &str, s: tonic::Status) -> Response {
    let status = if s.code() == tonic::Code::NotFound {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::BAD_GATEWAY
    };
    json_response(
        status,
        json!({"error": format!("{member}: {}", s.message())}),
    )
}

/// A Prometheus label value: `\\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn metrics(State(api): State<Shared>) -> Response {
    let Some(c) = api.upgrade() else {
        return gone();
    };
    let mut out = String::new();
    let members = c.member_list().topology().len();
    out.push_str("# HELP protocluster_members_count Members of the current topology.\n");
    out.push_str("# TYPE protocluster_members_count gauge\n");
    out.push_str(&format!("protocluster_members_count {members}\n"));
    out.push_str("# HELP protocluster_virtualactors Activations per kind per member (gossip heartbeats; this member: now).\n");
    out.push_str("# TYPE protocluster_virtualactors gauge\n");
    for (member, kinds) in &activations_per_member(&c) {
        for (kind, n) in kinds {
            out.push_str(&format!(
                "protocluster_virtualactors{{member=\"{}\",kind=\"{}\"}} {n}\n",
                label(member),
                label(kind)
            ));
        }
    }
    out.push_str("# HELP protoactor_processes Processes registered on this node.\n");
    out.push_str("# TYPE protoactor_processes gauge\n");
    out.push_str(&format!(
        "protoactor_processes {}\n",
        c.system().registry().len()
    ));
    let latencies = c.request_latencies().snapshot();
    out.push_str("# HELP protocluster_grain_request_duration_seconds This member's grain calls per kind and method, retries included.\n");
    out.push_str("# TYPE protocluster_grain_request_duration_seconds histogram\n");
    for s in &latencies {
        let labels = format!("kind=\"{}\",method=\"{}\"", label(&s.kind), label(s.method));
        for (i, n) in s.cumulative.iter().enumerate() {
            let le = crate::latency::BUCKETS
                .get(i)
                .map_or("+Inf".to_string(), |b| b.to_string());
            out.push_str(&format!(
                "protocluster_grain_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}\n"
            ));
        }
        out.push_str(&format!(
            "protocluster_grain_request_duration_seconds_sum{{{labels}}} {}\n",
            s.sum_seconds
        ));
        out.push_str(&format!(
            "protocluster_grain_request_duration_seconds_count{{{labels}}} {}\n",
            s.count
        ));
    }
    out.push_str("# HELP protocluster_grain_request_errors_total This member's failed grain calls per kind and method.\n");
    out.push_str("# TYPE protocluster_grain_request_errors_total counter\n");
    for s in &latencies {
        out.push_str(&format!(
            "protocluster_grain_request_errors_total{{kind=\"{}\",method=\"{}\"}} {}\n",
            label(&s.kind),
            label(s.method),
            s.errors
        ));
    }
    out.push_str("# HELP protoactor_deadletter_count Dead letters on this node since the management API started.\n");
    out.push_str("# TYPE protoactor_deadletter_count counter\n");
    out.push_str(&format!(
        "protoactor_deadletter_count {}\n",
        api.dead_letters.load(AtomicOrdering::Relaxed)
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// The dashboard: one static page, compiled into the binary.
async fn dashboard() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("management/dashboard.html"),
    )
        .into_response()
}

/// Server-sent events: the current topology, then every new one.
async fn events(State(w): State<Shared>) -> Response {
    let Some(c) = w.upgrade() else { return gone() };
    let rx = c.member_list().watch();
    drop(c);
    let stream = futures_util::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first && rx.changed().await.is_err() {
            return None;
        }
        let t = rx.borrow_and_update().clone();
        let v = json!({
            "hash": t.hash().to_string(),
            "members": t.members().map(|m| m.id.clone()).collect::<Vec<_>>(),
        });
        let frame = format!("event: topology\ndata: {v}\n\n");
        Some((Ok::<_, Infallible>(Bytes::from(frame)), (rx, false)))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_found_and_decoded() {
        let q = Some("pattern=a%2Fb+c&member=127.0.0.1:1");
        assert_eq!(query_param(q, "pattern").as_deref(), Some("a/b c"));
        assert_eq!(query_param(q, "member").as_deref(), Some("127.0.0.1:1"));
        assert_eq!(query_param(q, "nope"), None);
        assert_eq!(query_param(Some("p=%zz%"), "p").as_deref(), Some("%zz%"));
    }

    #[test]
    fn base_paths_are_normalised() {
        let a: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert_eq!(
            ManagementConfig::new(a).with_base_path("mgmt/").base_path,
            "/mgmt"
        );
        assert_eq!(ManagementConfig::new(a).with_base_path("/").base_path, "");
    }
}
