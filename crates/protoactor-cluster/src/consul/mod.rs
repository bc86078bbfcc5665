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

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::task::AbortHandle;

pub mod api;

pub use api::{
    aggregated_status, go_duration, members_of, AgentService, ConsulConfig, HealthCheck,
    ServiceCheck, ServiceEntry, ServiceRegistration,
};

use crate::error::ClusterError;
use crate::proto::Member;
use crate::provider::{ClusterProvider, ProviderContext, ProviderFuture};

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
    ctx.is_shut_down()
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
