//! The Consul provider (protoactor-go's `cluster/clusterproviders/consul/consul_provider.go` and
//! `provider_actor.go`), on the
//! local Consul agent's HTTP API:
//! - `PUT /v1/agent/service/register`: service `ID` = the actor system id, `Name` = the
//!   cluster, `Tags` = the kinds, `Address`/`Port` of the remote, `Meta {"id": ..}`, and one
//!   TTL check (`TTL` 3 s, `DeregisterCriticalServiceAfter` 1 min);
//! - `PUT /v1/agent/check/update/service:<ID>` with `{"Status":"passing","Output":""}` every
//!   second;
//! - `GET /v1/health/service/<cluster>?index=<N>&wait=<ms>ms` blocking queries: the members are
//!   the entries whose checks aggregate to `passing`;
//! - `PUT /v1/agent/service/deregister/<ID>` on graceful shutdown.
//!
//! The same registration and queries as Go's, so Go and Rust members of one cluster see each
//! other through one Consul. Checked against Consul's documented API (and a test agent
//! implementing it), not a live Consul.
//!
//! Better than Go: a member whose TTL was missed is only out of the topology while its check
//! is not passing, and comes back when it passes again (Go blocks it forever); a TTL update the agent refuses (it lost the registration, e.g. after a restart)
//! registers again; a failed registration is retried after [`ConsulConfig::refresh_ttl`]
//! rather than in a tight loop; a blocking query never spins (an index that goes backwards
//! restarts from 0, as Consul's documentation asks).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::task::AbortHandle;

use crate::cluster::ClusterError;
use crate::proto::Member;
use crate::provider::{ClusterProvider, ProviderContext, ProviderFuture};

/// Settings of the Consul provider (Go's defaults).
#[derive(Debug, Clone)]
pub struct ConsulConfig {
    /// The agent's HTTP address, `host:port` (Go: `CONSUL_HTTP_ADDR`, else `127.0.0.1:8500`).
    pub address: String,
    /// The TTL of the service check (Go: 3 s).
    pub ttl: Duration,
    /// Time between two TTL updates (Go: 1 s).
    pub refresh_ttl: Duration,
    /// How long a critical service stays registered before the agent removes it (Go: 60 s).
    pub deregister_critical: Duration,
    /// The longest hold of one blocking query (Go: 20 s).
    pub blocking_wait: Duration,
    /// Longest wait for a non-blocking request.
    pub request_timeout: Duration,
}

impl ConsulConfig {
    /// Go's defaults with the agent at `CONSUL_HTTP_ADDR` (else `127.0.0.1:8500`).
    pub fn from_env() -> Self {
        let address = std::env::var("CONSUL_HTTP_ADDR")
            .ok()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "127.0.0.1:8500".into());
        Self::new(address)
    }

    /// Go's defaults with the agent at `address` (`host:port`, an `http://` prefix allowed).
    pub fn new(address: impl Into<String>) -> Self {
        let address = address.into();
        ConsulConfig {
            address: address
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string(),
            ttl: Duration::from_secs(3),
            refresh_ttl: Duration::from_secs(1),
            deregister_critical: Duration::from_secs(60),
            blocking_wait: Duration::from_secs(20),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// Sets the check TTL.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the time between TTL updates.
    pub fn with_refresh_ttl(mut self, refresh: Duration) -> Self {
        self.refresh_ttl = refresh;
        self
    }

    /// Sets how long a critical service stays registered.
    pub fn with_deregister_critical(mut self, after: Duration) -> Self {
        self.deregister_critical = after;
        self
    }

    /// Sets the longest hold of one blocking query.
    pub fn with_blocking_wait(mut self, wait: Duration) -> Self {
        self.blocking_wait = wait;
        self
    }
}

/// Go's `time.Duration.String()` (`3s`, `1m0s`, `1.5s`, `500ms`), as Go's provider writes the
/// check durations.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        // Below a second Go picks ms/µs/ns with a fraction; whole milliseconds suffice here.
        if nanos.is_multiple_of(1_000_000) {
            return format!("{}ms", nanos / 1_000_000);
        }
        return format!("{nanos}ns");
    }
    let total_secs = d.as_secs();
    let frac = d.subsec_nanos();
    let (h, m, s) = (total_secs / 3600, (total_secs / 60) % 60, total_secs % 60);
    let mut secs = s.to_string();
    if frac > 0 {
        let f = format!("{frac:09}");
        secs.push('.');
        secs.push_str(f.trim_end_matches('0'));
    }
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

/// The check of a registration (Go's `AgentServiceCheck`, only the fields Go sets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ServiceCheck {
    /// The TTL, a Go duration string.
    #[serde(rename = "TTL", default, skip_serializing_if = "String::is_empty")]
    pub ttl: String,
    /// How long critical before deregistration, a Go duration string.
    #[serde(
        rename = "DeregisterCriticalServiceAfter",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub deregister_critical_service_after: String,
}

/// The body of `PUT /v1/agent/service/register` as Go's provider sends it (Go's
/// `AgentServiceRegistration`: empty fields omitted, `"Checks":null` always present).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ServiceRegistration {
    /// Service id (the actor system id).
    #[serde(rename = "ID", default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Service name (the cluster).
    #[serde(rename = "Name", default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The kinds.
    #[serde(rename = "Tags", default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Remote port.
    #[serde(rename = "Port", default, skip_serializing_if = "is_zero")]
    pub port: i64,
    /// Remote host.
    #[serde(rename = "Address", default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// `{"id": <member id>}`.
    #[serde(rename = "Meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<HashMap<String, String>>,
    /// The TTL check.
    #[serde(rename = "Check", default, skip_serializing_if = "Option::is_none")]
    pub check: Option<ServiceCheck>,
    /// Always `null` from Go.
    #[serde(rename = "Checks", default)]
    pub checks: Option<Vec<ServiceCheck>>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl ServiceRegistration {
    /// The registration of `member` in `cluster` with `config`'s check, as Go builds it.
    pub fn of_member(cluster: &str, member: &Member, config: &ConsulConfig) -> Self {
        ServiceRegistration {
            id: member.id.clone(),
            name: cluster.to_string(),
            tags: (!member.kinds.is_empty()).then(|| member.kinds.clone()),
            port: i64::from(member.port),
            address: member.host.clone(),
            meta: Some(HashMap::from([("id".to_string(), member.id.clone())])),
            check: Some(ServiceCheck {
                ttl: go_duration(config.ttl),
                deregister_critical_service_after: go_duration(config.deregister_critical),
            }),
            checks: None,
        }
    }
}

/// One entry of `GET /v1/health/service/<name>` (the fields read here).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default)]
pub struct ServiceEntry {
    /// The service instance.
    #[serde(rename = "Service")]
    pub service: Option<AgentService>,
    /// Its checks (the node's and the service's).
    #[serde(rename = "Checks")]
    pub checks: Vec<HealthCheck>,
}

/// A service instance in a health entry.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default)]
pub struct AgentService {
    /// Service id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Service name.
    #[serde(rename = "Service")]
    pub service: String,
    /// Tags (the kinds).
    #[serde(rename = "Tags")]
    pub tags: Option<Vec<String>>,
    /// Address.
    #[serde(rename = "Address")]
    pub address: String,
    /// Port.
    #[serde(rename = "Port")]
    pub port: i64,
    /// Meta (`id`).
    #[serde(rename = "Meta")]
    pub meta: Option<HashMap<String, String>>,
}

/// A check in a health entry.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(default)]
pub struct HealthCheck {
    /// Check id (`service:<id>`, `serfHealth`, ...).
    #[serde(rename = "CheckID")]
    pub check_id: String,
    /// `passing`, `warning`, `critical` or `maintenance`.
    #[serde(rename = "Status")]
    pub status: String,
}

/// Go's `HealthChecks.AggregatedStatus()`: maintenance beats critical beats warning beats
/// passing; no checks is passing.
pub fn aggregated_status(checks: &[HealthCheck]) -> &'static str {
    let (mut warning, mut critical, mut maintenance) = (false, false, false);
    for c in checks {
        if c.check_id == "_node_maintenance" || c.check_id.starts_with("_service_maintenance:") {
            maintenance = true;
            continue;
        }
        match c.status.as_str() {
            "passing" => {}
            "warning" => warning = true,
            "critical" => critical = true,
            _ => return "",
        }
    }
    if maintenance {
        "maintenance"
    } else if critical {
        "critical"
    } else if warning {
        "warning"
    } else {
        // Only passing checks, or none.
        "passing"
    }
}

/// The members in a health answer, as Go reads them: entries with at least one check, all
/// passing; id = `Meta.id`, or `<cluster>@<address>:<port>` without one.
pub fn members_of(cluster: &str, entries: &[ServiceEntry]) -> Vec<Member> {
    let mut out = Vec::new();
    for e in entries {
        let Some(s) = &e.service else { continue };
        if e.checks.is_empty() || aggregated_status(&e.checks) != "passing" {
            continue;
        }
        let Ok(port) = i32::try_from(s.port) else {
            tracing::warn!(service = %s.id, port = s.port, "consul: skipping a service with a bad port");
            continue;
        };
        let id = s
            .meta
            .as_ref()
            .and_then(|m| m.get("id"))
            .filter(|id| !id.is_empty())
            .cloned()
            .unwrap_or_else(|| format!("{cluster}@{}:{}", s.address, s.port));
        out.push(Member {
            host: s.address.clone(),
            port,
            id,
            kinds: s.tags.clone().unwrap_or_default(),
        });
    }
    out
}

/// Largest answer accepted from the agent.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// An answer of the agent.
struct Answer {
    status: StatusCode,
    index: Option<u64>,
    body: Bytes,
}

/// One HTTP/1.1 request to the agent on its own connection.
async fn request(
    address: &str,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Answer, String> {
    let fut = async {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| format!("{address}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("{address}: {e}"))?;
        let conn = tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, address)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let result = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("{address}: {e}"))?;
            let status = resp.status();
            let index = resp
                .headers()
                .get("X-Consul-Index")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("{address}: {e}"))?
                .to_bytes();
            Ok(Answer {
                status,
                index,
                body,
            })
        }
        .await;
        conn.abort();
        result
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| format!("{address}: no answer within {timeout:?}"))?
}

fn path_segment(s: &str) -> String {
    // Ids and names are shortuuids and cluster names; escape anything else.
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Default)]
struct Running {
    tasks: Vec<AbortHandle>,
    service_id: Option<String>,
}

/// The Consul provider. See the [module docs](self).
pub struct ConsulProvider {
    config: ConsulConfig,
    running: Mutex<Running>,
}

impl ConsulProvider {
    /// A provider with `config`.
    pub fn new(config: ConsulConfig) -> Self {
        ConsulProvider {
            config,
            running: Mutex::new(Running::default()),
        }
    }

    fn start(&self, ctx: ProviderContext, member: bool) -> Result<(), ClusterError> {
        let mut running = self.running.lock();
        if !running.tasks.is_empty() {
            return Err(ClusterError::Provider(
                "consul provider already started".into(),
            ));
        }
        if self.config.address.is_empty() {
            return Err(ClusterError::Provider("consul: no agent address".into()));
        }
        let rt = ctx.system().runtime().clone();
        if member {
            let registration =
                ServiceRegistration::of_member(ctx.cluster_name(), ctx.self_member(), &self.config);
            running.service_id = Some(registration.id.clone());
            let keeper = Keeper {
                config: self.config.clone(),
                registration,
                ctx: ctx.clone(),
            };
            running.tasks.push(rt.spawn(keeper.run()).abort_handle());
        }
        let watcher = Watcher {
            config: self.config.clone(),
            ctx,
        };
        running.tasks.push(rt.spawn(watcher.run()).abort_handle());
        Ok(())
    }
}

impl ClusterProvider for ConsulProvider {
    fn start_member(&self, ctx: ProviderContext) -> Result<(), ClusterError> {
        self.start(ctx, true)
    }

    fn start_client(&self, ctx: ProviderContext) -> Result<(), ClusterError> {
        self.start(ctx, false)
    }

    fn shutdown(&self, graceful: bool) -> ProviderFuture {
        let (tasks, service_id) = {
            let mut r = self.running.lock();
            (std::mem::take(&mut r.tasks), r.service_id.take())
        };
        // TTL updates stop before the deregistration, so none re-registers it (Go #377).
        for t in tasks {
            t.abort();
        }
        let config = self.config.clone();
        Box::pin(async move {
            let (true, Some(id)) = (graceful, service_id) else {
                return Ok(());
            };
            let path = format!("/v1/agent/service/deregister/{}", path_segment(&id));
            match request(
                &config.address,
                Method::PUT,
                &path,
                None,
                config.request_timeout,
            )
            .await
            {
                Ok(a) if a.status.is_success() => Ok(()),
                Ok(a) => Err(ClusterError::Provider(format!(
                    "consul: deregister {id}: status {}: {}",
                    a.status,
                    String::from_utf8_lossy(&a.body)
                ))),
                Err(e) => Err(ClusterError::Provider(format!(
                    "consul: deregister {id}: {e}"
                ))),
            }
        })
    }
}

impl Drop for ConsulProvider {
    fn drop(&mut self) {
        for t in self.running.get_mut().tasks.drain(..) {
            t.abort();
        }
    }
}

fn ended(ctx: &ProviderContext) -> bool {
    ctx.cluster().is_shut_down() || ctx.system().is_shut_down()
}

/// Registers the member and keeps its TTL check passing.
struct Keeper {
    config: ConsulConfig,
    registration: ServiceRegistration,
    ctx: ProviderContext,
}

impl Keeper {
    async fn register(&self) -> Result<(), String> {
        let body = serde_json::to_vec(&self.registration).map_err(|e| e.to_string())?;
        let a = request(
            &self.config.address,
            Method::PUT,
            "/v1/agent/service/register",
            Some(body),
            self.config.request_timeout,
        )
        .await?;
        if a.status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "status {}: {}",
                a.status,
                String::from_utf8_lossy(&a.body)
            ))
        }
    }

    /// `Ok(false)`: the agent does not know the check (register again).
    async fn update_ttl(&self) -> Result<bool, String> {
        let path = format!(
            "/v1/agent/check/update/service:{}",
            path_segment(&self.registration.id)
        );
        let a = request(
            &self.config.address,
            Method::PUT,
            &path,
            Some(br#"{"Status":"passing","Output":""}"#.to_vec()),
            self.config.request_timeout,
        )
        .await?;
        if a.status.is_success() {
            Ok(true)
        } else if a.status == StatusCode::NOT_FOUND
            || String::from_utf8_lossy(&a.body).contains("Unknown check")
        {
            Ok(false)
        } else {
            Err(format!(
                "status {}: {}",
                a.status,
                String::from_utf8_lossy(&a.body)
            ))
        }
    }

    async fn run(self) {
        let mut registered = false;
        let mut tick = tokio::time::interval(self.config.refresh_ttl);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if ended(&self.ctx) {
                return;
            }
            if !registered {
                match self.register().await {
                    Ok(()) => {
                        tracing::info!(id = %self.registration.id, "consul: registered");
                        registered = true;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "consul: registration failed; retrying");
                        continue;
                    }
                }
            }
            match self.update_ttl().await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(id = %self.registration.id, "consul: the agent lost the registration; registering again");
                    registered = false;
                    tick.reset_immediately();
                }
                Err(e) => tracing::warn!(error = %e, "consul: TTL update failed"),
            }
        }
    }
}

/// Follows the cluster's service health with blocking queries.
struct Watcher {
    config: ConsulConfig,
    ctx: ProviderContext,
}

impl Watcher {
    async fn run(self) {
        let name = path_segment(self.ctx.cluster_name());
        let wait = self.config.blocking_wait;
        let mut index: u64 = 0;
        let mut last: Option<Vec<Member>> = None;
        loop {
            if ended(&self.ctx) {
                return;
            }
            let path = format!(
                "/v1/health/service/{name}?index={index}&wait={}ms",
                wait.as_millis()
            );
            // Consul adds up to wait/16 of jitter to the hold.
            let timeout = wait + wait / 16 + self.config.request_timeout;
            let answer = request(&self.config.address, Method::GET, &path, None, timeout).await;
            let a = match answer {
                Ok(a) if a.status.is_success() => a,
                Ok(a) => {
                    tracing::warn!(status = %a.status, "consul: health query failed");
                    tokio::time::sleep(self.config.refresh_ttl).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "consul: health query failed");
                    tokio::time::sleep(self.config.refresh_ttl).await;
                    continue;
                }
            };
            // Consul's rules: an index that went backwards restarts at 0; never block on 0.
            let new_index = a.index.unwrap_or(0);
            index = if new_index < index {
                0
            } else {
                new_index.max(1)
            };
            let entries: Vec<ServiceEntry> = match serde_json::from_slice(&a.body) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "consul: health answer is not a service list");
                    tokio::time::sleep(self.config.refresh_ttl).await;
                    continue;
                }
            };
            let mut members = members_of(self.ctx.cluster_name(), &entries);
            members.sort_by(|a, b| a.id.cmp(&b.id));
            // Go ignores empty lists (it waits for at least one member).
            if members.is_empty() || last.as_ref() == Some(&members) {
                continue;
            }
            last = Some(members.clone());
            self.ctx.update_members(members);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(3)), "3s");
        assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(go_duration(Duration::from_secs(3725)), "1h2m5s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
    }

    #[test]
    fn registration_body_is_gos() {
        let m = Member::new("127.0.0.1", 8090, "sysid", ["Hello", "prototopic"]);
        let r = ServiceRegistration::of_member("my-cluster", &m, &ConsulConfig::new("x:1"));
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "ID": "sysid", "Name": "my-cluster", "Tags": ["Hello", "prototopic"],
                "Port": 8090, "Address": "127.0.0.1", "Meta": {"id": "sysid"},
                "Check": {"TTL": "3s", "DeregisterCriticalServiceAfter": "1m0s"},
                "Checks": null
            })
        );
    }

    fn check(id: &str, status: &str) -> HealthCheck {
        HealthCheck {
            check_id: id.into(),
            status: status.into(),
        }
    }

    #[test]
    fn aggregated_status_as_go() {
        assert_eq!(
            aggregated_status(&[
                check("serfHealth", "passing"),
                check("service:a", "passing")
            ]),
            "passing"
        );
        assert_eq!(
            aggregated_status(&[
                check("serfHealth", "passing"),
                check("service:a", "critical")
            ]),
            "critical"
        );
        assert_eq!(
            aggregated_status(&[check("service:a", "warning")]),
            "warning"
        );
        assert_eq!(
            aggregated_status(&[
                check("_node_maintenance", "critical"),
                check("service:a", "passing")
            ]),
            "maintenance"
        );
        assert_eq!(aggregated_status(&[check("service:a", "bogus")]), "");
    }

    #[test]
    fn members_from_health_entries() {
        let entries: Vec<ServiceEntry> = serde_json::from_str(
            r#"[
            {"Node":{"Node":"n"},"Service":{"ID":"a","Service":"c","Tags":["k"],"Address":"10.0.0.1","Port":1,"Meta":{"id":"a"}},
             "Checks":[{"CheckID":"serfHealth","Status":"passing"},{"CheckID":"service:a","Status":"passing"}]},
            {"Service":{"ID":"b","Service":"c","Tags":null,"Address":"10.0.0.2","Port":2,"Meta":null},
             "Checks":[{"CheckID":"service:b","Status":"passing"}]},
            {"Service":{"ID":"d","Service":"c","Address":"10.0.0.3","Port":3,"Meta":{"id":"d"}},
             "Checks":[{"CheckID":"service:d","Status":"critical"}]},
            {"Service":{"ID":"e","Service":"c","Address":"10.0.0.4","Port":4},"Checks":[]}
        ]"#,
        )
        .unwrap();
        let ms = members_of("c", &entries);
        let ids: Vec<&str> = ms.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["a", "c@10.0.0.2:2"]);
        assert_eq!(ms[0].kinds, ["k"]);
        assert_eq!((ms[1].host.as_str(), ms[1].port), ("10.0.0.2", 2));
    }
}
