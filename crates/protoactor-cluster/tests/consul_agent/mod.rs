//! A small Consul-compatible agent for the tests (no Consul server can be installed here):
//! just the four endpoints protoactor-go's consul provider uses, with Consul's documented
//! semantics (https://developer.hashicorp.com/consul/api-docs):
//! - `PUT /v1/agent/service/register`: a service with one TTL check `service:<ID>`, which
//!   starts `critical`; the body may carry `"Checks":null`;
//! - `PUT /v1/agent/check/update/<check id>` `{"Status","Output"}`: sets the status and
//!   restarts the TTL; an unknown check is a 404;
//! - `PUT /v1/agent/service/deregister/<ID>`: removes it (404 when unknown);
//! - `GET /v1/health/service/<name>?index=N&wait=D`: the service's entries with their checks
//!   (the node's `serfHealth` and the service check) and `X-Consul-Index`; with `index` at or
//!   past the current index the answer is held until the index changes or `wait` passes
//!   (default 5 min, at most 10 min).
//!
//! A check whose TTL passes without an update goes `critical`; a service critical for longer
//! than its `DeregisterCriticalServiceAfter` is removed. Every change raises the index.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::watch;

const NODE: &str = "test-agent";

/// One registered service.
#[derive(Debug, Clone)]
pub struct Service {
    pub id: String,
    pub name: String,
    pub tags: Option<Value>,
    pub address: String,
    pub port: i64,
    pub meta: Option<Value>,
    pub ttl: Duration,
    pub deregister_after: Option<Duration>,
    pub status: String,
    pub output: String,
    /// When the TTL runs out without an update.
    pub expires: Instant,
    pub critical_since: Option<Instant>,
}

#[derive(Default)]
struct State {
    index: u64,
    services: BTreeMap<String, Service>,
    /// Every registration body, as received.
    registrations: Vec<Value>,
    ttl_updates: u64,
}

/// The running agent; stops when dropped.
pub struct ConsulAgent {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    tasks: Vec<tokio::task::AbortHandle>,
}

/// Go's `time.ParseDuration` for the units Consul clients send (`h`, `m`, `s`, `ms`, `us`,
/// `ns`, with fractions; `1m0s`).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * unit;
    }
    Some(Duration::from_secs_f64(total))
}

impl ConsulAgent {
    /// Starts an agent on a loopback port (on the current tokio runtime).
    pub async fn start() -> ConsulAgent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            index: 1,
            ..Default::default()
        }));
        let (changes, _) = watch::channel(1u64);
        let changes = Arc::new(changes);
        let serve = {
            let (state, changes) = (state.clone(), changes.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (state, changes) = (state.clone(), changes.clone());
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                            let (state, changes) = (state.clone(), changes.clone());
                            async move { Ok::<_, Infallible>(handle(req, &state, &changes).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            })
        };
        let reaper = {
            let (state, changes) = (state.clone(), changes.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let mut st = state.lock();
                    let now = Instant::now();
                    let mut changed = false;
                    let mut gone = Vec::new();
                    for s in st.services.values_mut() {
                        if s.status != "critical" && now >= s.expires {
                            s.status = "critical".into();
                            s.output = "TTL expired".into();
                            s.critical_since = Some(now);
                            changed = true;
                        }
                        if let (Some(since), Some(after)) = (s.critical_since, s.deregister_after) {
                            if now >= since + after {
                                gone.push(s.id.clone());
                            }
                        }
                    }
                    for id in gone {
                        st.services.remove(&id);
                        changed = true;
                    }
                    if changed {
                        bump(&mut st, &changes);
                    }
                }
            })
        };
        ConsulAgent {
            addr,
            state,
            tasks: vec![serve.abort_handle(), reaper.abort_handle()],
        }
    }

    /// `host:port` of the agent.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The registered services.
    pub fn services(&self) -> BTreeMap<String, Service> {
        self.state.lock().services.clone()
    }

    /// Every registration body received.
    pub fn registrations(&self) -> Vec<Value> {
        self.state.lock().registrations.clone()
    }

    /// How many TTL updates came.
    pub fn ttl_updates(&self) -> u64 {
        self.state.lock().ttl_updates
    }

    /// The current index.
    pub fn index(&self) -> u64 {
        self.state.lock().index
    }
}

impl Drop for ConsulAgent {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn bump(st: &mut State, changes: &watch::Sender<u64>) {
    st.index += 1;
    changes.send_replace(st.index);
}

fn reply(status: StatusCode, body: impl Into<Bytes>, index: Option<u64>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Some(i) = index {
        r.headers_mut()
            .insert("X-Consul-Index", i.to_string().parse().unwrap());
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            "application/json".parse().unwrap(),
        );
    }
    r
}

fn query(req: &Request<Incoming>, key: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| v.to_string())
    })
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    req: Request<Incoming>,
    state: &Mutex<State>,
    changes: &watch::Sender<u64>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if let Some(name) = path.strip_prefix("/v1/health/service/") {
        if method != Method::GET {
            return reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed", None);
        }
        let name = unescape(name);
        let index: u64 = query(&req, "index")
            .and_then(|i| i.parse().ok())
            .unwrap_or(0);
        let wait = query(&req, "wait")
            .and_then(|w| parse_go_duration(&w))
            .unwrap_or(Duration::from_secs(300))
            .min(Duration::from_secs(600));
        if index > 0 {
            let mut rx = changes.subscribe();
            let _ = tokio::time::timeout(wait, rx.wait_for(|i| *i > index)).await;
        }
        let st = state.lock();
        let entries: Vec<Value> = st
            .services
            .values()
            .filter(|s| s.name == name)
            .map(|s| {
                json!({
                    "Node": {"ID": "00000000-0000-0000-0000-000000000001", "Node": NODE, "Address": "127.0.0.1", "Datacenter": "dc1"},
                    "Service": {
                        "ID": s.id, "Service": s.name, "Tags": s.tags.clone().unwrap_or(Value::Null),
                        "Address": s.address, "Meta": s.meta.clone().unwrap_or(Value::Null), "Port": s.port,
                    },
                    "Checks": [
                        {"Node": NODE, "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing",
                         "Output": "Agent alive and reachable", "ServiceID": "", "ServiceName": ""},
                        {"Node": NODE, "CheckID": format!("service:{}", s.id), "Name": format!("Service '{}' check", s.name),
                         "Status": s.status, "Output": s.output, "ServiceID": s.id, "ServiceName": s.name},
                    ],
                })
            })
            .collect();
        return reply(
            StatusCode::OK,
            serde_json::to_vec(&entries).unwrap(),
            Some(st.index),
        );
    }
    if method != Method::PUT {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed", None);
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return reply(StatusCode::BAD_REQUEST, e.to_string(), None),
    };
    if path == "/v1/agent/service/register" {
        let v: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    format!("Request decode failed: {e}"),
                    None,
                )
            }
        };
        let name = v["Name"].as_str().unwrap_or("").to_string();
        if name.is_empty() {
            return reply(StatusCode::BAD_REQUEST, "Missing service name", None);
        }
        if !(v["Checks"].is_null() || v["Checks"].is_array()) {
            return reply(StatusCode::BAD_REQUEST, "Checks must be a list", None);
        }
        let check = &v["Check"];
        let Some(ttl) = check["TTL"].as_str().and_then(parse_go_duration) else {
            return reply(
                StatusCode::BAD_REQUEST,
                "this test agent supports TTL checks only",
                None,
            );
        };
        let deregister_after = match check["DeregisterCriticalServiceAfter"].as_str() {
            None => None,
            Some(d) => match parse_go_duration(d) {
                Some(d) => Some(d),
                None => {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        "bad DeregisterCriticalServiceAfter",
                        None,
                    )
                }
            },
        };
        let id = v["ID"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or(&name)
            .to_string();
        let now = Instant::now();
        let mut st = state.lock();
        st.registrations.push(v.clone());
        st.services.insert(
            id.clone(),
            Service {
                id,
                name,
                tags: v.get("Tags").cloned(),
                address: v["Address"].as_str().unwrap_or("").to_string(),
                port: v["Port"].as_i64().unwrap_or(0),
                meta: v.get("Meta").cloned(),
                ttl,
                deregister_after,
                // TTL checks start critical until the first update.
                status: "critical".into(),
                output: String::new(),
                expires: now,
                critical_since: Some(now),
            },
        );
        bump(&mut st, changes);
        return reply(StatusCode::OK, "", None);
    }
    if let Some(check) = path.strip_prefix("/v1/agent/check/update/") {
        let check = unescape(check);
        let v: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    format!("Request decode failed: {e}"),
                    None,
                )
            }
        };
        let status = v["Status"].as_str().unwrap_or("").to_string();
        if !["passing", "warning", "critical"].contains(&status.as_str()) {
            return reply(
                StatusCode::BAD_REQUEST,
                format!("Invalid check status: {status:?}"),
                None,
            );
        }
        let mut st = state.lock();
        st.ttl_updates += 1;
        let Some(s) = check
            .strip_prefix("service:")
            .and_then(|id| st.services.get_mut(id))
        else {
            return reply(
                StatusCode::NOT_FOUND,
                format!("Unknown check ID {check:?}"),
                None,
            );
        };
        let now = Instant::now();
        let changed = s.status != status;
        s.expires = now + s.ttl;
        s.critical_since = (status == "critical").then_some(now);
        s.status = status;
        s.output = v["Output"].as_str().unwrap_or("").to_string();
        if changed {
            bump(&mut st, changes);
        }
        return reply(StatusCode::OK, "", None);
    }
    if let Some(id) = path.strip_prefix("/v1/agent/service/deregister/") {
        let id = unescape(id);
        let mut st = state.lock();
        if st.services.remove(&id).is_none() {
            return reply(
                StatusCode::NOT_FOUND,
                format!("Unknown service ID {id:?}"),
                None,
            );
        }
        bump(&mut st, changes);
        return reply(StatusCode::OK, "", None);
    }
    reply(StatusCode::NOT_FOUND, "not found", None)
}
