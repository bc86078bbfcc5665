//! The automanaged provider (protoactor-go's `cluster/clusterproviders/automanaged/automanaged.go` and `node_model.go`):
//! no membership service; every member serves `GET /_health` with its node description (the
//! exact JSON Go serves) on its auto-manage port, and polls the health endpoint of every host
//! in a static list, its own included, every [`AutoManagedConfig::refresh`]. The member list
//! is every node that answered, in this cluster.
//!
//! Rust and Go members mix: list every member's `host:auto-manage-port` on every node.
//!
//! Better than Go (where one failed poll makes a member leave, which then blocks it for good): one failed poll does not drop a member; it leaves
//! only after [`AutoManagedConfig::misses_before_leave`] polls in a row failed, and it rejoins
//! as soon as it answers again (the member list blocks nobody for it). This node is always
//! in its own list, whatever its own endpoint does under load.
//!
//! Polls run on a fixed tick (every `refresh`), at most one in flight per host. A failed poll
//! (refused, an error status) is a miss when it fails; a poll still unanswered at a tick is a
//! miss at that tick, once per tick. So a frozen host leaves `misses_before_leave` ticks after
//! its first unanswered poll, like a killed one (which refuses at once) plus a tick, and never
//! slows the judgement of the others (a round that awaited every host took `refresh +
//! http_timeout` while one was frozen). An answer, however late, resets the misses: the worst
//! answer time that still counts as alive is `min(http_timeout, misses_before_leave ×
//! refresh)` for every poll (2 s with the defaults).
//!
//! Over 900 lines: about 510 of code (the health endpoint and its poller), the rest its
//! unit tests beside it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::task::{AbortHandle, JoinSet};

use crate::error::ClusterError;
use crate::proto::Member;
use crate::provider::{ClusterProvider, ProviderContext, ProviderFuture};

/// The node description a member serves on `GET /_health`, field for field (and in the
/// order) of Go's `automanaged.NodeModel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct NodeModel {
    /// Member id (the actor system id).
    pub id: String,
    /// Remote host of the member.
    pub address: String,
    /// Port of the member's `/_health` endpoint.
    pub auto_manage_port: i64,
    /// Remote port of the member.
    pub port: i64,
    /// Kinds the member hosts (`null` when none, as Go writes a nil slice).
    pub kinds: Option<Vec<String>>,
    /// Name of the member's cluster.
    pub cluster_name: String,
}

impl NodeModel {
    /// The member this node describes (Go: `Member{id, host: address, port, kinds}`).
    pub fn to_member(&self) -> Option<Member> {
        let port = i32::try_from(self.port).ok()?;
        Some(Member {
            host: self.address.clone(),
            port,
            id: self.id.clone(),
            kinds: self.kinds.clone().unwrap_or_default(),
        })
    }
}

/// Settings of the automanaged provider.
#[derive(Debug, Clone)]
pub struct AutoManagedConfig {
    /// Port of this member's `/_health` endpoint (Go: 6330). 0 picks a free port, see
    /// [`AutoManagedProvider::bound_address`]; other members must know it, though.
    pub auto_manage_port: u16,
    /// Interface the endpoint listens on (Go: `0.0.0.0`).
    pub bind_host: String,
    /// `host:port` of every member's health endpoint, this one's included (Go: a static
    /// list, `localhost:6330` by default).
    pub hosts: Vec<String>,
    /// Time between two polls of every host (Go: 2 s).
    pub refresh: Duration,
    /// Timeout of one poll, connecting included (Go: 2 s).
    pub http_timeout: Duration,
    /// Misses in a row before a member leaves the member list (Go: 1): a failed poll, or a
    /// tick at which its poll is still unanswered.
    pub misses_before_leave: u32,
}

impl AutoManagedConfig {
    /// Go's defaults for this endpoint port and host list.
    pub fn new(auto_manage_port: u16, hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        AutoManagedConfig {
            auto_manage_port,
            bind_host: "0.0.0.0".to_string(),
            hosts: hosts.into_iter().map(Into::into).collect(),
            refresh: Duration::from_secs(2),
            http_timeout: Duration::from_secs(2),
            misses_before_leave: 2,
        }
    }

    /// Sets the interface the health endpoint listens on.
    pub fn with_bind_host(mut self, host: impl Into<String>) -> Self {
        self.bind_host = host.into();
        self
    }

    /// Sets the poll interval.
    pub fn with_refresh(mut self, refresh: Duration) -> Self {
        self.refresh = refresh;
        self
    }

    /// Sets the timeout of one poll.
    pub fn with_http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Sets how many misses in a row make a member leave (at least 1).
    pub fn with_misses_before_leave(mut self, misses: u32) -> Self {
        self.misses_before_leave = misses.max(1);
        self
    }
}

#[derive(Default)]
struct Running {
    tasks: Vec<AbortHandle>,
    bound: Option<SocketAddr>,
}

/// The automanaged provider. See the [module docs](self).
pub struct AutoManagedProvider {
    config: AutoManagedConfig,
    running: Mutex<Running>,
}

impl AutoManagedProvider {
    /// A provider with `config`.
    pub fn new(config: AutoManagedConfig) -> Self {
        AutoManagedProvider {
            config,
            running: Mutex::new(Running::default()),
        }
    }

    /// The address the health endpoint is bound to, once started as a member.
    pub fn bound_address(&self) -> Option<SocketAddr> {
        self.running.lock().bound
    }

    fn start(&self, ctx: ProviderContext, member: bool) -> Result<(), ClusterError> {
        let mut running = self.running.lock();
        if !running.tasks.is_empty() {
            return Err(ClusterError::Provider(
                "automanaged provider already started".into(),
            ));
        }
        let rt = ctx.system().runtime().clone();
        let self_member = ctx.self_member().clone();
        if member {
            let addr = format!("{}:{}", self.config.bind_host, self.config.auto_manage_port);
            let listener = std::net::TcpListener::bind(&addr).map_err(|e| {
                ClusterError::Provider(format!("automanaged: cannot listen on {addr}: {e}"))
            })?;
            listener
                .set_nonblocking(true)
                .map_err(|e| ClusterError::Provider(format!("automanaged: {e}")))?;
            running.bound = listener.local_addr().ok();
            let listener = {
                let _enter = rt.enter();
                tokio::net::TcpListener::from_std(listener)
                    .map_err(|e| ClusterError::Provider(format!("automanaged: {e}")))?
            };
            let body = Bytes::from(node_json(&NodeModel {
                id: self_member.id.clone(),
                address: self_member.host.clone(),
                auto_manage_port: running.bound.map_or(0, |a| a.port() as i64),
                port: self_member.port as i64,
                kinds: (!self_member.kinds.is_empty()).then(|| self_member.kinds.clone()),
                cluster_name: ctx.cluster_name().to_string(),
            }));
            running
                .tasks
                .push(rt.spawn(serve(listener, body)).abort_handle());
        }
        let poller = Poller {
            ctx,
            hosts: self.config.hosts.clone(),
            timeout: self.config.http_timeout,
            misses_before_leave: self.config.misses_before_leave.max(1),
            self_member: member.then_some(self_member),
        };
        running
            .tasks
            .push(rt.spawn(poller.run(self.config.refresh)).abort_handle());
        Ok(())
    }

    fn stop(&self) {
        let mut running = self.running.lock();
        for t in running.tasks.drain(..) {
            t.abort();
        }
        running.bound = None;
    }
}

impl ClusterProvider for AutoManagedProvider {
    fn start_member(&self, ctx: ProviderContext) -> Result<(), ClusterError> {
        self.start(ctx, true)
    }

    fn start_client(&self, ctx: ProviderContext) -> Result<(), ClusterError> {
        self.start(ctx, false)
    }

    fn shutdown(&self, _graceful: bool) -> ProviderFuture {
        // Closing the endpoint (and its kept-alive connections) is the deregistration: the
        // other members' next polls fail.
        self.stop();
        Box::pin(async { Ok(()) })
    }
}

impl Drop for AutoManagedProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Go's `c.JSON(200, node)`: `encoding/json` with a trailing newline.
fn node_json(node: &NodeModel) -> Vec<u8> {
    let mut v = serde_json::to_vec(node).unwrap_or_default();
    v.push(b'\n');
    v
}

/// Serves `GET /_health` until aborted; aborting drops the `JoinSet`, which closes every
/// open connection too, so kept-alive pollers notice at once.
async fn serve(listener: tokio::net::TcpListener, body: Bytes) {
    let mut conns = JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // E.g. too many open files: wait a little rather than spin.
                    tracing::warn!(error = %e, "automanaged: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let body = body.clone();
        conns.spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let body = body.clone();
                async move { Ok::<_, Infallible>(health_response(&req, body)) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "automanaged: health connection ended");
            }
        });
    }
}

fn health_response(req: &Request<Incoming>, body: Bytes) -> Response<Full<Bytes>> {
    let (status, body, ctype) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/_health") => (StatusCode::OK, body, "application/json; charset=UTF-8"),
        (_, "/_health") => (
            StatusCode::METHOD_NOT_ALLOWED,
            Bytes::from_static(b"{\"message\":\"Method Not Allowed\"}\n"),
            "application/json; charset=UTF-8",
        ),
        _ => (
            StatusCode::NOT_FOUND,
            Bytes::from_static(b"{\"message\":\"Not Found\"}\n"),
            "application/json; charset=UTF-8",
        ),
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(ctype),
    );
    resp
}

/// Largest health body accepted from a peer: a node description is a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

/// Polls one health endpoint: `GET http://<host>/_health`.
pub async fn poll_node(host: &str, timeout: Duration) -> Result<NodeModel, String> {
    tokio::time::timeout(timeout, poll_node_inner(host))
        .await
        .map_err(|_| format!("{host}: no answer within {timeout:?}"))?
}

async fn poll_node_inner(host: &str) -> Result<NodeModel, String> {
    let stream = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| format!("{host}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{host}: {e}"))?;
    let conn = tokio::spawn(conn);
    let req = Request::get("/_health")
        .header(hyper::header::HOST, host)
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| format!("{host}: {e}"))?;
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("{host}: {e}"))?;
        if resp.status() != StatusCode::OK {
            return Err(format!("{host}: status {}", resp.status()));
        }
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("{host}: {e}"))?
            .to_bytes();
        serde_json::from_slice::<NodeModel>(&body)
            .map_err(|e| format!("{host}: not a node description: {e}"))
    }
    .await;
    conn.abort();
    result
}

/// Where a host's poll stands within the current tick interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum PollState {
    /// No poll in flight, and this interval already has an answer or a counted miss (also
    /// the start: nothing to judge before the first tick).
    #[default]
    Accounted,
    /// No poll in flight, and nothing accounted for this interval yet (the last poll failed
    /// after a tick had already counted it).
    Unaccounted,
    /// A poll is in flight and no tick has counted it yet.
    Polling,
    /// A poll is in flight and a tick already counted it as missed, so its failure is not
    /// counted again.
    Overdue,
}

#[derive(Default)]
struct HostState {
    node: Option<NodeModel>,
    /// Ticks in a row this host was missed (see [`HostState::tick`]).
    misses: u32,
    /// Its poll (never more than one in flight per host).
    poll: PollState,
}

impl HostState {
    /// A tick of the poller: a host that neither answered nor failed since the last tick
    /// (its poll is still out: slow, frozen, a peer that accepts and never answers) is
    /// missed now, on the poller's schedule rather than at the end of its own timeout.
    /// Returns whether a new poll should start (none is in flight).
    fn tick(&mut self) -> bool {
        if self.poll != PollState::Accounted {
            self.misses = self.misses.saturating_add(1);
        }
        match self.poll {
            PollState::Accounted | PollState::Unaccounted => {
                self.poll = PollState::Polling;
                true
            }
            PollState::Polling | PollState::Overdue => {
                self.poll = PollState::Overdue;
                false
            }
        }
    }

    /// The poll's result, whenever it arrives: an answer, however late, resets the misses;
    /// a failure counts one miss unless a tick already counted this poll or this interval.
    fn result(&mut self, result: Result<NodeModel, String>) -> Result<(), String> {
        match result {
            Ok(node) => {
                self.node = Some(node);
                self.misses = 0;
                self.poll = PollState::Accounted;
                Ok(())
            }
            Err(e) => {
                self.poll = match self.poll {
                    PollState::Overdue => PollState::Unaccounted,
                    PollState::Accounted => PollState::Accounted,
                    PollState::Polling | PollState::Unaccounted => {
                        self.misses = self.misses.saturating_add(1);
                        PollState::Accounted
                    }
                };
                Err(e)
            }
        }
    }
}

struct Poller {
    ctx: ProviderContext,
    hosts: Vec<String>,
    timeout: Duration,
    misses_before_leave: u32,
    /// This node, in member mode.
    self_member: Option<Member>,
}

impl Poller {
    /// Polls every host on a fixed tick of `refresh` (as Go polls every host each round),
    /// each poll bounded by the timeout, at most one in flight per host. A host is judged
    /// at each tick, whatever the other hosts do: a frozen host neither slows the rounds
    /// nor the detection of the others. The member list is published at each tick and
    /// whenever an answer or failure changes it.
    async fn run(self, refresh: Duration) {
        // Nothing to judge before the first tick.
        let mut states: Vec<HostState> = self.hosts.iter().map(|_| HostState::default()).collect();
        let mut polls = JoinSet::new();
        let mut ticks = tokio::time::interval(refresh.max(Duration::from_millis(1)));
        // A late tick (a loaded machine) does not fire a burst of ticks: each would count a
        // miss for hosts that had no time to answer.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut published: Option<Vec<Member>> = None;
        // Each host's poll task in flight.
        let mut tasks: Vec<Option<tokio::task::Id>> = vec![None; self.hosts.len()];
        loop {
            tokio::select! {
                // Answers first: one that is ready when the tick fires counts as on time.
                biased;
                Some(done) = polls.join_next_with_id(), if !polls.is_empty() => {
                    // A poll task that panicked is a failed poll of its host, which must not
                    // stay "in flight" for ever.
                    let (i, result) = match done {
                        Ok((_, r)) => r,
                        Err(e) => match tasks.iter().position(|t| *t == Some(e.id())) {
                            Some(i) => (i, Err(format!("{}: poll task failed: {e}", self.hosts[i]))),
                            None => continue,
                        },
                    };
                    tasks[i] = None;
                    let (state, host): (&mut HostState, &String) = (&mut states[i], &self.hosts[i]);
                    if let Err(e) = state.result(result) {
                        tracing::debug!(host = %host, error = %e, misses = state.misses, "automanaged: poll failed");
                    }
                    // The first list waits for every host's first answer or miss (as Go's
                    // first round does), so it does not read as a run of joins.
                    if !first_round_done(&states) {
                        continue;
                    }
                    let members = self.members(&states);
                    if published.as_ref() != Some(&members) {
                        self.ctx.update_members(members.clone());
                        published = Some(members);
                    }
                }
                _ = ticks.tick() => {
                    // A cluster dropped or shut down without the provider's shutdown ends it too.
                    if self.ctx.is_shut_down() {
                        break;
                    }
                    for (i, state) in states.iter_mut().enumerate() {
                        if state.tick() {
                            let host = self.hosts[i].clone();
                            let timeout = self.timeout;
                            let task = polls.spawn(async move { (i, poll_node(&host, timeout).await) });
                            tasks[i] = Some(task.id());
                        } else if state.poll == PollState::Overdue {
                            tracing::debug!(host = %self.hosts[i], misses = state.misses, "automanaged: poll still unanswered");
                        }
                    }
                    if first_round_done(&states) {
                        let members = self.members(&states);
                        self.ctx.update_members(members.clone());
                        published = Some(members);
                    }
                }
            }
        }
    }

    fn members(&self, states: &[HostState]) -> Vec<Member> {
        select_members(
            states,
            self.ctx.cluster_name(),
            self.self_member.as_ref(),
            self.misses_before_leave,
        )
    }
}

/// Every host answered or was missed at least once.
fn first_round_done(states: &[HostState]) -> bool {
    states.iter().all(|s| s.node.is_some() || s.misses > 0)
}

/// The member list from the last poll results: this node (in member mode), then every
/// node of `cluster_name` that answered one of its last `misses_before_leave` polls.
fn select_members(
    states: &[HostState],
    cluster_name: &str,
    self_member: Option<&Member>,
    misses_before_leave: u32,
) -> Vec<Member> {
    let mut members: Vec<Member> = self_member.into_iter().cloned().collect();
    for s in states {
        if s.misses >= misses_before_leave {
            continue;
        }
        let Some(node) = &s.node else { continue };
        if node.cluster_name != cluster_name || self_member.is_some_and(|m| m.id == node.id) {
            continue;
        }
        if let Some(m) = node.to_member() {
            members.push(m);
        }
    }
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, cluster: &str, port: i64) -> NodeModel {
        NodeModel {
            id: id.into(),
            address: "127.0.0.1".into(),
            auto_manage_port: 6330,
            port,
            kinds: Some(vec!["hello".into()]),
            cluster_name: cluster.into(),
        }
    }

    #[test]
    fn node_json_is_byte_for_byte_what_go_serves() {
        // Go: echo's c.JSON(200, NewNode(...)) (`automanaged.go`; the bytes were checked against a running Go member).
        let n = NodeModel {
            id: "xS6gqVDs8FkgKrsZyLq2NJ".into(),
            address: "127.0.0.1".into(),
            auto_manage_port: 6330,
            port: 8090,
            kinds: Some(vec!["Hello".into(), "prototopic".into()]),
            cluster_name: "my-cluster".into(),
        };
        assert_eq!(
            String::from_utf8(node_json(&n)).unwrap(),
            "{\"id\":\"xS6gqVDs8FkgKrsZyLq2NJ\",\"address\":\"127.0.0.1\",\"auto_manage_port\":6330,\
             \"port\":8090,\"kinds\":[\"Hello\",\"prototopic\"],\"cluster_name\":\"my-cluster\"}\n"
        );
        let none = NodeModel {
            kinds: None,
            ..n.clone()
        };
        assert!(String::from_utf8(node_json(&none))
            .unwrap()
            .contains("\"kinds\":null"));
        // Go's decoder: unknown fields ignored, missing ones zero, null kinds = none.
        let parsed: NodeModel =
            serde_json::from_str("{\"id\":\"a\",\"port\":1,\"kinds\":null,\"extra\":true}")
                .unwrap();
        assert_eq!(parsed.to_member().unwrap().kinds, Vec::<String>::new());
        assert_eq!(parsed.cluster_name, "");
    }

    #[test]
    fn one_missed_poll_keeps_a_member_and_an_answer_brings_it_back() {
        let me = Member::new("127.0.0.1", 1, "me", ["hello"]);
        let mut states = vec![
            HostState {
                node: Some(node("me", "c", 1)),
                misses: 0,
                ..HostState::default()
            },
            HostState {
                node: Some(node("b", "c", 2)),
                misses: 1,
                ..HostState::default()
            },
            HostState {
                node: Some(node("other-cluster", "x", 3)),
                misses: 0,
                ..HostState::default()
            },
            HostState {
                node: None,
                misses: 5,
                ..HostState::default()
            },
        ];
        let ids = |ms: Vec<Member>| ms.into_iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(ids(select_members(&states, "c", Some(&me), 2)), ["me", "b"]);
        // Go's behaviour is misses_before_leave = 1: the first miss drops it.
        assert_eq!(ids(select_members(&states, "c", Some(&me), 1)), ["me"]);
        states[1].misses = 2;
        assert_eq!(ids(select_members(&states, "c", Some(&me), 2)), ["me"]);
        states[1].misses = 0;
        assert_eq!(ids(select_members(&states, "c", Some(&me), 2)), ["me", "b"]);
        // A client lists only the others; its own endpoint failing never drops this node.
        assert_eq!(ids(select_members(&states, "c", None, 2)), ["me", "b"]);
        states[0].misses = 9;
        assert_eq!(ids(select_members(&states, "c", Some(&me), 2)), ["me", "b"]);
    }

    /// A peer's health endpoint whose answers the test controls: `fail` > 0 fails that many
    /// polls (500), `u32::MAX` fails all of them; `delay_ms` delays every answer, [`FROZEN`]
    /// holds it until the delay changes (a stopped process answers once resumed).
    struct FlakyPeer {
        fail: std::sync::atomic::AtomicU32,
        delay_ms: std::sync::atomic::AtomicU64,
        polls: std::sync::atomic::AtomicUsize,
        body: Bytes,
    }

    const FROZEN: u64 = u64::MAX;

    impl FlakyPeer {
        fn new(body: Bytes) -> std::sync::Arc<FlakyPeer> {
            std::sync::Arc::new(FlakyPeer {
                fail: 0.into(),
                delay_ms: 0.into(),
                polls: 0.into(),
                body,
            })
        }
    }

    async fn run_flaky(listener: tokio::net::TcpListener, peer: std::sync::Arc<FlakyPeer>) {
        use std::sync::atomic::Ordering::SeqCst;
        while let Ok((stream, _)) = listener.accept().await {
            let peer = peer.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
                    let peer = peer.clone();
                    async move {
                        while peer.delay_ms.load(SeqCst) == FROZEN {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        let delay = peer.delay_ms.load(SeqCst);
                        if delay > 0 {
                            tokio::time::sleep(Duration::from_millis(delay)).await;
                        }
                        let failing = peer
                            .fail
                            .fetch_update(SeqCst, SeqCst, |f| match f {
                                0 => None,
                                u32::MAX => Some(u32::MAX),
                                n => Some(n - 1),
                            })
                            .is_ok();
                        peer.polls.fetch_add(1, SeqCst);
                        let mut resp = Response::new(Full::new(if failing {
                            Bytes::from_static(b"down")
                        } else {
                            peer.body.clone()
                        }));
                        if failing {
                            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    /// A member whose only peer is a [`FlakyPeer`], and the peer's leaves it has seen.
    struct Harness {
        system: protoactor::ActorSystem,
        remote: std::sync::Arc<protoactor_remote::Remote>,
        cluster: crate::Cluster,
        peer: std::sync::Arc<FlakyPeer>,
        left: std::sync::Arc<Mutex<Vec<String>>>,
    }

    impl Harness {
        fn start(refresh: Duration, http_timeout: Duration) -> Harness {
            use crate::{Cluster, ClusterConfig, ClusterTopology, DistHashIdentityLookup};
            let system = protoactor::ActorSystem::new();
            let remote =
                protoactor_remote::Remote::start(&system, protoactor_remote::RemoteConfig::local())
                    .unwrap();
            let rt = system.runtime().clone();
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .unwrap();
            let peer_host = listener.local_addr().unwrap().to_string();
            let peer = FlakyPeer::new(Bytes::from(node_json(&node("peer", "c", 9))));
            rt.spawn(run_flaky(listener, peer.clone()));
            let own = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let own_port = own.local_addr().unwrap().port();
            drop(own);
            let provider = AutoManagedProvider::new(
                AutoManagedConfig::new(own_port, [format!("127.0.0.1:{own_port}"), peer_host])
                    .with_bind_host("127.0.0.1")
                    .with_refresh(refresh)
                    .with_http_timeout(http_timeout),
            );
            let left = std::sync::Arc::new(Mutex::new(Vec::new()));
            let l = left.clone();
            let _ = system
                .event_stream()
                .subscribe_to::<ClusterTopology, _>(move |t| {
                    l.lock().extend(t.left.iter().map(|m| m.id.clone()))
                });
            let cluster = Cluster::start_member(
                &system,
                &remote,
                ClusterConfig::new("c", provider, DistHashIdentityLookup::new()),
            )
            .unwrap();
            Harness {
                system,
                remote,
                cluster,
                peer,
                left,
            }
        }

        /// Waits up to `within` for the peer to be (or not be) a member; the time it took.
        fn wait_peer(&self, present: bool, within: Duration) -> Option<Duration> {
            let ml = self.cluster.member_list().clone();
            let start = std::time::Instant::now();
            self.system
                .runtime()
                .block_on(async move {
                    ml.wait_until(within, |t| t.member("peer").is_some() == present)
                        .await
                })
                .then(|| start.elapsed())
        }

        /// Waits (up to 30 s) until the peer answered `n` more polls.
        fn polls_after(&self, n: usize) {
            use std::sync::atomic::Ordering::SeqCst;
            let start = self.peer.polls.load(SeqCst);
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while self.peer.polls.load(SeqCst) < start + n {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the peer is not polled"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }

        fn stop(self) {
            self.cluster.shutdown_blocking(true);
            self.remote.shutdown();
            self.system.shutdown();
        }
    }

    #[test]
    fn a_missed_poll_keeps_the_member_and_a_member_that_left_rejoins_when_it_answers() {
        use std::sync::atomic::Ordering::SeqCst;
        let h = Harness::start(Duration::from_millis(200), Duration::from_secs(2));
        assert!(
            h.wait_peer(true, Duration::from_secs(30)).is_some(),
            "the peer never joined"
        );
        let ml = h.cluster.member_list().clone();
        assert!(ml.contains_member_id(h.system.id()), "self is a member");

        // One failed poll (Go: the member leaves and is blocked forever).
        h.peer.fail.store(1, SeqCst);
        h.polls_after(4);
        assert!(
            h.left.lock().is_empty(),
            "left after one missed poll: {:?}",
            h.left.lock()
        );
        assert!(ml.contains_member_id("peer"));

        // It stops answering: it leaves; it answers again: it is a member again.
        h.peer.fail.store(u32::MAX, SeqCst);
        assert!(
            h.wait_peer(false, Duration::from_secs(30)).is_some(),
            "a peer that never answers stays"
        );
        h.peer.fail.store(0, SeqCst);
        assert!(
            h.wait_peer(true, Duration::from_secs(30)).is_some(),
            "the peer never rejoined"
        );
        assert!(!ml.is_blocked("peer"));
        h.stop();
    }

    #[test]
    fn a_frozen_peer_leaves_on_the_poll_schedule_and_a_slow_one_stays() {
        use std::sync::atomic::Ordering::SeqCst;
        // A poll timeout far beyond the schedule: a frozen peer must leave on the ticks,
        // not after misses x (refresh + timeout) = 21 s as when each round awaited it.
        let refresh = Duration::from_millis(500);
        let h = Harness::start(refresh, Duration::from_secs(10));
        assert!(
            h.wait_peer(true, Duration::from_secs(30)).is_some(),
            "the peer never joined"
        );

        // Slow but answering: 1.5 x refresh per answer (under the timeout) counts as alive.
        h.peer.delay_ms.store(750, SeqCst);
        h.polls_after(4);
        assert!(
            h.left.lock().is_empty(),
            "a slow peer left: {:?}",
            h.left.lock()
        );

        // Frozen (holds every poll unanswered): it leaves within misses x refresh after its
        // first unanswered poll, which starts within a refresh (an answer in flight when it
        // froze may take up to 1.5 refresh more) — plus a margin for a loaded machine.
        h.peer.delay_ms.store(FROZEN, SeqCst);
        let took = h
            .wait_peer(false, Duration::from_secs(30))
            .expect("a frozen peer stays a member");
        eprintln!("a frozen peer left after {took:?} (refresh {refresh:?})");
        assert!(
            took < 2 * refresh + refresh * 5 / 2 + Duration::from_secs(2),
            "a frozen peer left after {took:?}"
        );
        // Resumed: it answers the poll it held, late, and is a member again at once.
        h.peer.delay_ms.store(0, SeqCst);
        let back = h
            .wait_peer(true, Duration::from_secs(30))
            .expect("the resumed peer never rejoined");
        assert!(back < Duration::from_secs(5), "rejoined after {back:?}");
        h.stop();
    }

    #[test]
    fn a_host_is_missed_once_per_tick_and_an_answer_however_late_resets_it() {
        let answer = || Ok(node("b", "c", 2));
        let failure = || Err("refused".to_string());
        let fresh = HostState::default;
        // Refused at once (a killed peer): each failed poll is a miss when it fails.
        let mut s = fresh();
        assert!(s.tick());
        let _ = s.result(failure());
        assert_eq!(s.misses, 1);
        assert!(s.tick());
        assert_eq!(s.misses, 1, "the failure already counted for its tick");
        let _ = s.result(failure());
        assert_eq!(s.misses, 2);

        // Silent (frozen): a miss at every tick its poll is out, no second poll, and its
        // timeout is not counted again.
        let mut s = fresh();
        assert!(s.tick());
        assert!(!s.tick(), "a second poll while one is in flight");
        assert_eq!(s.misses, 1);
        assert!(!s.tick());
        assert_eq!(s.misses, 2);
        let _ = s.result(failure());
        assert_eq!(s.misses, 2, "a timeout after its ticks counted twice");
        assert!(s.tick());
        assert_eq!(s.misses, 3, "a tick with no answer at all");

        // Slow: missed at the tick, answered after it: alive, and the next tick is no miss.
        let mut s = fresh();
        assert!(s.tick());
        assert!(!s.tick());
        assert_eq!(s.misses, 1);
        s.result(answer()).unwrap();
        assert_eq!(s.misses, 0);
        assert!(s.tick());
        assert_eq!(s.misses, 0);
        assert!(first_round_done(&[s]));
        assert!(!first_round_done(&[fresh()]));
    }

    #[tokio::test]
    async fn serves_health_and_polls_it_and_closes_kept_alive_connections_on_stop() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let n = node("abc", "c", 8090);
        let task = tokio::spawn(serve(listener, Bytes::from(node_json(&n))));
        assert_eq!(poll_node(&addr, Duration::from_secs(5)).await.unwrap(), n);

        // Anything else is refused, and a non-200 is a failed poll.
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 512];
        let n_read = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n_read]).starts_with("HTTP/1.1 404"));

        // A kept-alive connection ends when the endpoint stops, so pollers see it at once.
        task.abort();
        let _ = task.await;
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
        assert!(
            matches!(closed, Ok(Ok(_)) | Ok(Err(_))),
            "connection still open"
        );
        assert!(poll_node(&addr, Duration::from_secs(5)).await.is_err());
    }

    #[tokio::test]
    async fn a_peer_that_is_not_a_health_endpoint_is_a_failed_poll_not_a_hang() {
        // Accepts and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap().to_string();
        let _keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let err = poll_node(&silent_addr, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(err.contains("no answer"), "{err}");
        // Answers garbage.
        let junk = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let junk_addr = junk.local_addr().unwrap().to_string();
        let _j = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut s, _)) = junk.accept().await {
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{{{{{")
                    .await;
            }
        });
        let err = poll_node(&junk_addr, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.contains("not a node description"), "{err}");
    }
}
