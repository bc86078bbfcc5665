//! The etcd provider (protoactor-go's `cluster/clusterproviders/etcd/etcd_provider.go`): each member
//! keeps one key `<base>/<cluster>/<cluster>@<system id>` (base `/protoactor`) holding Go's
//! node JSON, attached to a lease (TTL 3 s) it keeps alive; every member watches the
//! cluster's keys. Go and Rust members of one cluster find each other through one etcd.
//!
//! The member id is `<cluster>@<system id>`, as Go's (see
//! [`ClusterProvider::member_id`]): owners tie-break on ids, so Rust must use Go's.
//!
//! Better than Go:
//! - the watch starts at the revision after the initial read, so no change between the read
//!   and the watch is lost;
//! - only this cluster's keys are read (`<base>/<cluster>/`, with the slash: cluster `app`
//!   does not see cluster `app2`);
//! - one lease per registration (none orphaned), revoked on graceful shutdown together with
//!   the key's deletion, so the others see the member leave at once;
//! - when etcd fails (restart, lost connection, expired lease) the provider reconnects,
//!   re-registers with a new lease, reads the members again and watches from there; the last
//!   member list stays in force meanwhile;
//! - a value another writer left that is not a node (bad JSON, no id, a bad port) is logged
//!   and skipped; a value without `alive` is a live node (only `"alive":false` is not).
//!
//! A member killed without a graceful shutdown disappears from every member's topology when
//! its lease expires: at most [`EtcdConfig::ttl`] (plus up to a second of etcd's lease
//! granularity) after its last keepalive.

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_client::{Client, EventType, GetOptions, PutOptions, WatchOptions};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ClusterError;
use crate::etcd_common::{etcd_client_builders, whole_secs, EtcdClientConfig};
use crate::proto::Member;
use crate::provider::{ClusterProvider, ProviderContext, ProviderFuture};

/// Go's base key.
pub const DEFAULT_BASE_KEY: &str = "/protoactor";

/// Settings of the etcd provider.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// Endpoints, key prefix (Go: `/protoactor`), timeouts (request 5 s) and the pause before
    /// reconnecting (Go: 1 s), shared with the etcd identity lookup.
    pub client: EtcdClientConfig,
    /// Lease TTL, in whole seconds (Go: 3 s): how long a killed member stays listed.
    pub ttl: Duration,
    /// Start even when etcd cannot be reached (default `false`: the start fails with etcd's
    /// error). See [`EtcdConfig::with_start_anyway`].
    pub start_anyway: bool,
}

impl EtcdConfig {
    /// Go's defaults with these endpoints.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        EtcdConfig {
            client: EtcdClientConfig::new(
                endpoints,
                DEFAULT_BASE_KEY,
                Duration::from_secs(5),
                Duration::from_secs(1),
            ),
            ttl: Duration::from_secs(3),
            start_anyway: false,
        }
    }

    etcd_client_builders!();

    /// Sets the lease TTL (rounded up to whole seconds, at least 1 s).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Starts the member (or client) even when etcd cannot be reached: the start returns at
    /// once, the provider keeps connecting (every [`EtcdClientConfig::retry_interval`]), and
    /// until it has read the members every grain call fails at once with
    /// [`ClusterError::ProviderNotConnected`] naming etcd's error; then calls work. Off by
    /// default: an unreachable etcd fails the start after
    /// [`EtcdClientConfig::connect_timeout`].
    pub fn with_start_anyway(mut self, start_anyway: bool) -> Self {
        self.start_anyway = start_anyway;
        self
    }

    fn ttl_secs(&self) -> i64 {
        whole_secs(self.ttl, 1)
    }

    /// `<base>/<cluster>/`: the keys of one cluster's members.
    pub fn cluster_prefix(&self, cluster: &str) -> String {
        format!("{}/{}/", self.client.base_key, cluster)
    }

    /// `<base>/<cluster>/<member id>`: Go's key of a member.
    pub fn member_key(&self, cluster: &str, member_id: &str) -> String {
        format!("{}/{}/{}", self.client.base_key, cluster, member_id)
    }
}

/// The value of a member's key, field for field (and in the order) of Go's `etcd.Node`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct EtcdNode {
    /// Member id, `<cluster>@<system id>`.
    pub id: String,
    /// The same as `id` (Go writes both).
    pub name: String,
    /// Remote host.
    pub host: String,
    /// Remote host again (read when `host` is empty).
    pub address: String,
    /// Remote port.
    pub port: i64,
    /// Kinds hosted (`null` from Go when none).
    pub kinds: Option<Vec<String>>,
    /// `true` for a live member; Go treats a missing field as dead, we only an explicit
    /// `false`.
    pub alive: Option<bool>,
}

impl EtcdNode {
    /// The node of `member`, as Go writes its own.
    pub fn of_member(member: &Member) -> Self {
        EtcdNode {
            id: member.id.clone(),
            name: member.id.clone(),
            host: member.host.clone(),
            address: member.host.clone(),
            port: i64::from(member.port),
            kinds: Some(member.kinds.clone()),
            alive: Some(true),
        }
    }

    /// The member this node describes (Go: host, or address when host is empty), or why it
    /// is not one.
    pub fn to_member(&self) -> Result<Member, String> {
        if self.id.is_empty() {
            return Err("no id".into());
        }
        let port = i32::try_from(self.port)
            .ok()
            .filter(|p| (1..=65535).contains(p))
            .ok_or_else(|| format!("bad port {}", self.port))?;
        let host = if self.host.is_empty() {
            &self.address
        } else {
            &self.host
        };
        if host.is_empty() {
            return Err("no host".into());
        }
        Ok(Member {
            host: host.clone(),
            port,
            id: self.id.clone(),
            kinds: self.kinds.clone().unwrap_or_default(),
        })
    }

    /// Go's JSON (`encoding/json` of `etcd.Node`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What a key's value means for the member list.
fn parse_value(value: &[u8]) -> Result<Option<Member>, String> {
    let node: EtcdNode = serde_json::from_slice(value).map_err(|e| e.to_string())?;
    if node.alive == Some(false) {
        return Ok(None);
    }
    node.to_member().map(Some)
}

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// This member's current registration, for the graceful deregistration.
    registration: std::sync::Arc<Mutex<Option<Registration>>>,
}

#[derive(Clone)]
struct Registration {
    client: Client,
    key: String,
    lease: i64,
}

/// Test hook: runs between the initial read and the start of the watch.
#[cfg(test)]
type Gap = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync,
>;

/// The etcd provider. See the [module docs](self).
pub struct EtcdProvider {
    config: EtcdConfig,
    running: Mutex<Option<Running>>,
    #[cfg(test)]
    gap: Option<Gap>,
}

impl EtcdProvider {
    /// A provider with `config`.
    pub fn new(config: EtcdConfig) -> Self {
        EtcdProvider {
            config,
            running: Mutex::new(None),
            #[cfg(test)]
            gap: None,
        }
    }

    /// The lease of this member's current registration, once registered.
    pub fn lease_id(&self) -> Option<i64> {
        let running = self.running.lock();
        let reg = running.as_ref()?.registration.lock();
        reg.as_ref().map(|r| r.lease)
    }

    fn start(&self, ctx: ProviderContext, member: bool) -> Result<(), ClusterError> {
        let mut running = self.running.lock();
        if running.is_some() {
            return Err(ClusterError::Provider(
                "etcd provider already started".into(),
            ));
        }
        self.config.client.check_endpoints("etcd")?;
        let (stop, stop_rx) = watch::channel(false);
        let registration = std::sync::Arc::new(Mutex::new(None));
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let start_anyway = self.config.start_anyway;
        if start_anyway {
            ctx.set_not_connected(format!(
                "etcd: connecting to {:?}",
                self.config.client.endpoints
            ));
        }
        let session = Session {
            first: (!start_anyway).then_some(first_tx),
            connected: !start_anyway,
            config: self.config.clone(),
            prefix: self.config.cluster_prefix(ctx.cluster_name()),
            self_member: member.then(|| ctx.self_member().clone()),
            ctx: ctx.clone(),
            registration: registration.clone(),
            stop: stop_rx,
            #[cfg(test)]
            gap: self.gap.clone(),
        };
        let task = ctx.system().runtime().spawn(session.run());
        if start_anyway {
            *running = Some(Running {
                stop,
                task,
                registration,
            });
            return Ok(());
        }
        // The first session is bounded by the connect and request timeouts: a provider that
        // cannot reach etcd fails the start with etcd's error instead of starting a member
        // with an empty topology (which would look like a hosting error later).
        let bound = self.config.client.connect_timeout + 4 * self.config.client.request_timeout;
        let first = match first_rx.recv_timeout(bound) {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {bound:?}")),
        };
        if let Err(e) = first {
            let _ = stop.send(true);
            task.abort();
            return Err(ClusterError::Provider(format!(
                "etcd: cannot reach {:?}: {e}",
                self.config.client.endpoints
            )));
        }
        *running = Some(Running {
            stop,
            task,
            registration,
        });
        Ok(())
    }
}

impl ClusterProvider for EtcdProvider {
    fn start_member(&self, ctx: ProviderContext) -> Result<(), ClusterError> {
        self.start(ctx, true)
    }

    fn start_client(&self, ctx: ProviderContext) -> Result<(), ClusterError> {
        self.start(ctx, false)
    }

    fn shutdown(&self, graceful: bool) -> ProviderFuture {
        let running = self.running.lock().take();
        let timeout = self.config.client.request_timeout;
        Box::pin(async move {
            let Some(r) = running else { return Ok(()) };
            let _ = r.stop.send(true);
            r.task.abort();
            let _ = r.task.await;
            let reg = r.registration.lock().take();
            // Not graceful: stay registered until the lease expires, as a crashed member.
            let (true, Some(mut reg)) = (graceful, reg) else {
                return Ok(());
            };
            // The key first (the others see the member leave at once), then the lease.
            let deleted = tokio::time::timeout(timeout, reg.client.delete(reg.key.clone(), None))
                .await
                .map_err(|_| "timed out".to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            let revoked = tokio::time::timeout(timeout, reg.client.lease_revoke(reg.lease))
                .await
                .map_err(|_| "timed out".to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            match (deleted, revoked) {
                (Ok(_), Ok(_)) => Ok(()),
                (Err(e), _) | (_, Err(e)) => Err(ClusterError::Provider(format!(
                    "etcd: deregistering {}: {e}",
                    reg.key
                ))),
            }
        })
    }

    fn member_id(&self, cluster_name: &str, system_id: &str) -> String {
        format!("{cluster_name}@{system_id}")
    }
}

impl Drop for EtcdProvider {
    fn drop(&mut self) {
        if let Some(r) = self.running.lock().take() {
            let _ = r.stop.send(true);
            r.task.abort();
        }
    }
}

/// The provider's task: sessions (connect, register, read, watch, keep alive) until stopped.
struct Session {
    /// Told the outcome of the first session (the start waits for it).
    first: Option<std::sync::mpsc::Sender<Result<(), String>>>,
    /// False until a session read the members (start-anyway mode reports it to the cluster).
    connected: bool,
    config: EtcdConfig,
    prefix: String,
    ctx: ProviderContext,
    /// This node, in member mode.
    self_member: Option<Member>,
    registration: std::sync::Arc<Mutex<Option<Registration>>>,
    stop: watch::Receiver<bool>,
    #[cfg(test)]
    gap: Option<Gap>,
}

/// Why a session ended: stopped (for good), or failed (reconnect).
enum End {
    Stopped,
    Failed(String),
}

impl From<etcd_client::Error> for End {
    fn from(e: etcd_client::Error) -> Self {
        End::Failed(e.to_string())
    }
}

impl Session {
    async fn run(mut self) {
        loop {
            match self.session().await {
                End::Stopped => return,
                End::Failed(e) => {
                    if let Some(first) = self.first.take() {
                        let _ = first.send(Err(e));
                        return;
                    }
                    if !self.connected {
                        self.ctx.set_not_connected(format!(
                            "etcd: cannot reach {:?}: {e}",
                            self.config.client.endpoints
                        ));
                    }
                    tracing::warn!(cluster = %self.ctx.cluster_name(), error = %e, "etcd: session failed; reconnecting");
                }
            }
            let retry = self.config.client.retry_interval;
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = self.stop.changed() => return,
            }
        }
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow() || self.ctx.is_shut_down()
    }

    async fn call<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, End> {
        self.config.client.timed(what, f).await.map_err(End::Failed)
    }

    async fn session(&mut self) -> End {
        match self.session_inner().await {
            Ok(()) => End::Stopped,
            Err(e) => e,
        }
    }

    async fn session_inner(&mut self) -> Result<(), End> {
        if self.stopped() {
            return Err(End::Stopped);
        }
        let ttl = self.config.ttl_secs();
        let mut client = self
            .config
            .client
            .connect(Duration::from_secs(ttl as u64))
            .await
            .map_err(End::Failed)?;

        // Register (a fresh lease per session; the previous one, if etcd still has it, is
        // revoked once the key is on the new one).
        let mut keepalive = None;
        if let Some(me) = &self.self_member {
            let key = self.config.member_key(self.ctx.cluster_name(), &me.id);
            let value = EtcdNode::of_member(me).to_json();
            let lease = self
                .call("lease grant", client.lease_grant(ttl, None))
                .await?
                .id();
            self.call(
                "put",
                client.put(
                    key.clone(),
                    value,
                    Some(PutOptions::new().with_lease(lease)),
                ),
            )
            .await?;
            let previous = self.registration.lock().replace(Registration {
                client: client.clone(),
                key: key.clone(),
                lease,
            });
            if let Some(old) = previous.filter(|o| o.lease != lease) {
                let _ = tokio::time::timeout(
                    self.config.client.request_timeout,
                    client.lease_revoke(old.lease),
                )
                .await;
            }
            tracing::info!(key = %key, lease, "etcd: registered");
            keepalive = Some(
                self.call("keepalive", client.lease_keep_alive(lease))
                    .await?,
            );
        }

        // Read the members, then watch from the next revision: nothing is missed between.
        let got = self
            .call(
                "get",
                client.get(self.prefix.clone(), Some(GetOptions::new().with_prefix())),
            )
            .await?;
        let revision = got.header().map_or(0, |h| h.revision());
        let mut members: BTreeMap<String, Member> = BTreeMap::new();
        for kv in got.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            self.apply_put(&mut members, key, kv.value());
        }
        // Connected before the members are published: whoever sees them sees it connected.
        if !self.connected {
            self.connected = true;
            self.ctx.set_connected();
            tracing::info!(cluster = %self.ctx.cluster_name(), "etcd: connected");
        }
        self.publish(&members);
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(()));
        }
        #[cfg(test)]
        if let Some(gap) = &self.gap {
            gap().await;
        }
        let mut watch = self
            .call(
                "watch",
                client.watch(
                    self.prefix.clone(),
                    Some(
                        WatchOptions::new()
                            .with_prefix()
                            .with_start_revision(revision + 1),
                    ),
                ),
            )
            .await?;

        let beat = Duration::from_millis((ttl as u64 * 1000 / 3).max(300));
        let mut tick = tokio::time::interval(beat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_answer = tokio::time::Instant::now();
        let (mut keeper, mut answers) = match keepalive {
            Some((k, s)) => (Some(k), Some(s)),
            None => (None, None),
        };
        loop {
            tokio::select! {
                _ = self.stop.changed() => return Err(End::Stopped),
                _ = tick.tick() => {
                    if self.stopped() {
                        return Err(End::Stopped);
                    }
                    if let Some(k) = keeper.as_mut() {
                        if last_answer.elapsed() > self.config.ttl {
                            return Err(End::Failed("no keepalive answer within the lease TTL".into()));
                        }
                        k.keep_alive().await?;
                    }
                }
                answer = async { answers.as_mut().unwrap().message().await }, if answers.is_some() => {
                    match answer? {
                        Some(a) if a.ttl() > 0 => last_answer = tokio::time::Instant::now(),
                        Some(_) => return Err(End::Failed("the lease expired".into())),
                        None => return Err(End::Failed("keepalive stream ended".into())),
                    }
                }
                event = watch.message() => {
                    let Some(resp) = event? else {
                        return Err(End::Failed("watch stream ended".into()));
                    };
                    if resp.canceled() {
                        return Err(End::Failed(format!(
                            "watch canceled (compacted at {}): {}",
                            resp.compact_revision(),
                            resp.cancel_reason()
                        )));
                    }
                    if resp.events().is_empty() {
                        continue;
                    }
                    let mut self_deleted = false;
                    for ev in resp.events() {
                        let Some(kv) = ev.kv() else { continue };
                        let key = String::from_utf8_lossy(kv.key()).into_owned();
                        match ev.event_type() {
                            EventType::Put => self.apply_put(&mut members, key, kv.value()),
                            EventType::Delete => {
                                if self.is_own_key(&key) {
                                    self_deleted = true;
                                }
                                members.remove(&key);
                            }
                        }
                    }
                    self.publish(&members);
                    if self_deleted {
                        // Someone deleted our key while we live: register again.
                        return Err(End::Failed("this member's key was deleted".into()));
                    }
                }
            }
        }
    }

    fn is_own_key(&self, key: &str) -> bool {
        self.self_member
            .as_ref()
            .is_some_and(|me| key == self.config.member_key(self.ctx.cluster_name(), &me.id))
    }

    /// A key's new value: a member, or (logged) nothing.
    fn apply_put(&self, members: &mut BTreeMap<String, Member>, key: String, value: &[u8]) {
        match parse_value(value) {
            Ok(Some(m)) => {
                if self.self_member.as_ref().is_some_and(|me| me.id == m.id) {
                    return;
                }
                members.insert(key, m);
            }
            Ok(None) => {
                members.remove(&key);
            }
            Err(e) => {
                tracing::warn!(key = %key, error = %e, value = %String::from_utf8_lossy(value), "etcd: skipping a value that is not a member");
                members.remove(&key);
            }
        }
    }

    fn publish(&self, members: &BTreeMap<String, Member>) {
        let mut all: Vec<Member> = self.self_member.iter().cloned().collect();
        all.extend(members.values().cloned());
        self.ctx.update_members(all);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_json_is_byte_for_byte_what_go_writes() {
        // Go: json.Marshal(NewNode(...)) (`clusterproviders/etcd/node.go`; the bytes were checked against a running Go member).
        let m = Member::new("127.0.0.1", 8090, "my-cluster@abc", ["Hello", "prototopic"]);
        assert_eq!(
            EtcdNode::of_member(&m).to_json(),
            "{\"id\":\"my-cluster@abc\",\"name\":\"my-cluster@abc\",\"host\":\"127.0.0.1\",\
             \"address\":\"127.0.0.1\",\"port\":8090,\"kinds\":[\"Hello\",\"prototopic\"],\"alive\":true}"
        );
    }

    #[test]
    fn values_from_other_writers() {
        let go = br#"{"id":"c@x","name":"c@x","host":"","address":"10.0.0.1","port":1,"kinds":null,"alive":true}"#;
        let m = parse_value(go).unwrap().unwrap();
        assert_eq!(
            (m.host.as_str(), m.port, m.id.as_str()),
            ("10.0.0.1", 1, "c@x")
        );
        assert!(m.kinds.is_empty());
        // No `alive`: live (Go would drop it on a watch event).
        let m = parse_value(br#"{"id":"c@y","host":"h","port":2}"#).unwrap();
        assert!(m.is_some());
        assert_eq!(
            parse_value(br#"{"id":"c@y","host":"h","port":2,"alive":false}"#),
            Ok(None)
        );
        for bad in [
            &b"not json"[..],
            br#"{"host":"h","port":2}"#,
            br#"{"id":"a","host":"h","port":70000}"#,
            br#"{"id":"a","port":2}"#,
            br#"[1,2]"#,
        ] {
            assert!(
                parse_value(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn keys_and_ttl() {
        let c = EtcdConfig::new(["x"]).with_base_key("/p/");
        assert_eq!(c.cluster_prefix("app"), "/p/app/");
        assert_eq!(c.member_key("app", "app@1"), "/p/app/app@1");
        assert_eq!(
            c.clone().with_ttl(Duration::from_millis(2500)).ttl_secs(),
            3
        );
        assert_eq!(c.with_ttl(Duration::ZERO).ttl_secs(), 1);
        assert_eq!(
            EtcdProvider::new(EtcdConfig::new(["x"])).member_id("app", "sys"),
            "app@sys"
        );
    }

    /// A change between the initial read and the start of the watch is seen (Go's watch
    /// starts "now" and loses it). Needs the test etcd (`PROTOACTOR_ETCD_ENDPOINTS`).
    #[test]
    fn a_change_between_the_read_and_the_watch_is_not_lost() {
        use crate::{Cluster, ClusterConfig, DistHashIdentityLookup};
        let Ok(endpoints) = std::env::var("PROTOACTOR_ETCD_ENDPOINTS") else {
            assert!(
                std::env::var("PROTOACTOR_ETCD").as_deref() != Ok("required"),
                "PROTOACTOR_ETCD=required but PROTOACTOR_ETCD_ENDPOINTS is not set"
            );
            // The harness captures eprintln!; a direct write shows the skip.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"\n!!!!! SKIPPED: etcd unit test: PROTOACTOR_ETCD_ENDPOINTS is not set !!!!!\n",
            );
            return;
        };
        let endpoints: Vec<String> = endpoints.split(',').map(String::from).collect();
        let cluster_name = format!("etcd-gap-{}", std::process::id());
        let late = format!("{cluster_name}@late");
        let key = EtcdConfig::new(["x"]).member_key(&cluster_name, &late);
        let value =
            EtcdNode::of_member(&Member::new("127.0.0.1", 7, late.clone(), ["k"])).to_json();
        let mut provider = EtcdProvider::new(EtcdConfig::new(endpoints.clone()));
        let (eps, k, v) = (endpoints.clone(), key.clone(), value.clone());
        provider.gap = Some(std::sync::Arc::new(move || {
            let (eps, k, v) = (eps.clone(), k.clone(), v.clone());
            Box::pin(async move {
                let mut c = Client::connect(eps, None).await.unwrap();
                c.put(k, v, None).await.unwrap();
            })
        }));
        let system = protoactor::ActorSystem::new();
        let remote =
            protoactor_remote::Remote::start(&system, protoactor_remote::RemoteConfig::local())
                .unwrap();
        let config = ClusterConfig::new(&cluster_name, provider, DistHashIdentityLookup::new());
        let cluster = Cluster::start_member(&system, &remote, config).unwrap();
        let ml = cluster.member_list().clone();
        let seen = system.runtime().block_on(async move {
            ml.wait_until(Duration::from_secs(10), |t| t.member(&late).is_some())
                .await
        });
        cluster.shutdown_blocking(true);
        system.runtime().block_on(async {
            let mut c = Client::connect(endpoints, None).await.unwrap();
            c.delete(key, None).await.unwrap();
        });
        remote.shutdown();
        system.shutdown();
        assert!(
            seen,
            "the node written between the read and the watch was lost"
        );
    }

    /// A member whose etcd has nothing listening does not start (it would otherwise start
    /// with an empty topology and later blame the kinds): the start fails with etcd's error
    /// within the connect timeout.
    #[test]
    fn start_fails_with_the_connection_error_when_etcd_is_unreachable() {
        use crate::{Cluster, ClusterConfig, DistHashIdentityLookup};
        // Nothing listens on the first port of this test range.
        let endpoint = "http://127.0.0.1:42001";
        let system = protoactor::ActorSystem::new();
        let remote =
            protoactor_remote::Remote::start(&system, protoactor_remote::RemoteConfig::local())
                .unwrap();
        let provider = EtcdProvider::new(
            EtcdConfig::new([endpoint]).with_connect_timeout(Duration::from_millis(500)),
        );
        let config = ClusterConfig::new("unreachable", provider, DistHashIdentityLookup::new());
        let started = std::time::Instant::now();
        let err = match Cluster::start_member(&system, &remote, config) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a member started without reaching etcd"),
        };
        // Bounded: the connect timeout plus scheduling slack on a loaded machine.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
        assert!(
            err.starts_with("cluster provider: etcd: cannot reach [\"http://127.0.0.1:42001\"]: "),
            "{err}"
        );
        remote.shutdown();
        system.shutdown();
    }
}
