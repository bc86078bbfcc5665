//! The Kubernetes provider (cargo feature `kubernetes`), in the label dialect of
//! protoactor-go's `cluster/clusterproviders/k8s`: each member labels **its own pod**, and
//! every member watches the pods of its namespace that carry the cluster's label. Go and Rust
//! members of one cluster find each other through the same pods.
//!
//! A member's labels (Go's `labels.go`):
//!
//! | label | value |
//! |---|---|
//! | `cluster.proto.actor/cluster` | the cluster name |
//! | `cluster.proto.actor/port` | the remote port |
//! | `cluster.proto.actor/member-id` | the member id: the actor system id (32 hex digits, a new one per start, the format of Go's) |
//! | `cluster.proto.actor/kind-<kind>` | `true`, one per hosted kind |
//!
//! A pod is a member while it carries the cluster's label, its phase is `Running`, it has a
//! pod IP (the member's host, as in Go), every container is ready (and its `Ready`
//! condition, when present, is `True`), and it is **not terminating** (no
//! `deletionTimestamp`; Go keeps a terminating pod until its containers stop). This member
//! is always in its own list, whatever its pod's state (as .NET's provider does): it serves
//! while its pod is not ready yet.
//!
//! Better than Go:
//! - the pod list is read first and the watch resumes from its resource version, and after
//!   every event or bookmark from the last one seen: no change is lost between a list and a
//!   watch, or between two watches (Go watches "from now" and loses them); a `410 Gone` (the
//!   version was compacted away) lists again;
//! - registration is a merge patch of this member's labels only (Go replaces the whole label
//!   map with what it read, racing other writers); stale `cluster.proto.actor/*` labels of
//!   an earlier run are removed in the same patch;
//! - when the API server is unreachable the member keeps its last member list and serves,
//!   logs it once (and once when it is back) and publishes [`KubernetesApiStatus`] on the
//!   actor system's event stream; the provider retries every
//!   [`KubernetesConfig::retry_interval`];
//! - a member whose labels were removed while it lives labels its pod again.
//!
//! Needed permissions (RBAC): `get`, `list`, `watch` and `patch` on `pods` in the namespace
//! (docs/kubernetes.md has the Role).
//!
//! The k8s-openapi crate needs its Kubernetes version chosen by the final binary: a program
//! using this feature depends on `k8s-openapi` with one version feature (e.g. `latest`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube::Client;
use parking_lot::Mutex;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::error::ClusterError;
use crate::proto::Member;
use crate::provider::{ClusterProvider, ProviderContext, ProviderFuture};

/// The prefix of every label the provider writes.
pub const LABEL_PREFIX: &str = "cluster.proto.actor/";
/// The cluster name label (the watch's selector).
pub const LABEL_CLUSTER: &str = "cluster.proto.actor/cluster";
/// The remote port label.
pub const LABEL_PORT: &str = "cluster.proto.actor/port";
/// The member id label.
pub const LABEL_MEMBER_ID: &str = "cluster.proto.actor/member-id";
/// The prefix of the kind labels, `cluster.proto.actor/kind-<kind>=true`.
pub const LABEL_KIND_PREFIX: &str = "cluster.proto.actor/kind-";

/// The service account files of a pod (the in-cluster configuration reads them).
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Settings of the Kubernetes provider.
#[derive(Clone)]
pub struct KubernetesConfig {
    /// How to reach the API server (URL, credentials, CA).
    pub client: kube::Config,
    /// The namespace of this member's pod and of the pods it watches.
    pub namespace: String,
    /// This member's pod.
    pub pod_name: String,
    /// Pause before retrying a failed request or a broken watch (Go: 5 s for the watch).
    pub retry_interval: Duration,
    /// Longest wait for one request (get, list, patch; Go: 5 s).
    pub request_timeout: Duration,
    /// How long the API server keeps one watch open before this member watches again from
    /// the last resource version; a watch silent for longer (plus
    /// [`request_timeout`](Self::request_timeout)) is taken as a lost connection.
    pub watch_timeout: Duration,
}

impl std::fmt::Debug for KubernetesConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the client config: it holds credentials.
        f.debug_struct("KubernetesConfig")
            .field("api_server", &self.client.cluster_url)
            .field("namespace", &self.namespace)
            .field("pod_name", &self.pod_name)
            .field("retry_interval", &self.retry_interval)
            .field("request_timeout", &self.request_timeout)
            .field("watch_timeout", &self.watch_timeout)
            .finish()
    }
}

impl KubernetesConfig {
    /// An explicit configuration: the API server and credentials in `client`, this member's
    /// pod `pod_name` in `namespace` (for tests and members outside the cluster).
    pub fn new(
        client: kube::Config,
        namespace: impl Into<String>,
        pod_name: impl Into<String>,
    ) -> Self {
        KubernetesConfig {
            client,
            namespace: namespace.into(),
            pod_name: pod_name.into(),
            retry_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            watch_timeout: Duration::from_secs(60),
        }
    }

    /// The configuration of a member running in a pod, as Go's `rest.InClusterConfig`: the
    /// API server from `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`, the service
    /// account's token and CA from `/var/run/secrets/kubernetes.io/serviceaccount/`. The
    /// namespace is `POD_NAMESPACE` when set (downward API), else the service account's
    /// namespace file; the pod is `POD_NAME` when set, else the host name (Go's choice:
    /// Kubernetes names a pod's host after the pod).
    pub fn in_cluster() -> Result<Self, ClusterError> {
        let client = kube::Config::incluster()
            .map_err(|e| ClusterError::Provider(format!("kubernetes: in-cluster config: {e}")))?;
        let namespace = match std::env::var("POD_NAMESPACE") {
            Ok(ns) if !ns.trim().is_empty() => ns.trim().to_string(),
            _ => std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                .map(|s| s.trim().to_string())
                .map_err(|e| {
                    ClusterError::Provider(format!(
                        "kubernetes: reading {SERVICE_ACCOUNT_NAMESPACE}: {e} (or set POD_NAMESPACE)"
                    ))
                })?,
        };
        let pod_name = match std::env::var("POD_NAME") {
            Ok(p) if !p.trim().is_empty() => p.trim().to_string(),
            _ => host_name().ok_or_else(|| {
                ClusterError::Provider(
                    "kubernetes: no host name to take the pod name from (set POD_NAME)".into(),
                )
            })?,
        };
        Ok(Self::new(client, namespace, pod_name))
    }

    /// Sets the pause before retries.
    pub fn with_retry_interval(mut self, retry: Duration) -> Self {
        self.retry_interval = retry;
        self
    }

    /// Sets the longest wait for one request.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets how long one watch stays open (whole seconds, at least 1).
    pub fn with_watch_timeout(mut self, timeout: Duration) -> Self {
        self.watch_timeout = timeout;
        self
    }

    /// `cluster.proto.actor/cluster=<cluster>`: the pods of one cluster.
    pub fn label_selector(cluster: &str) -> String {
        format!("{LABEL_CLUSTER}={cluster}")
    }
}

/// The kernel's host name (Go's `os.Hostname`), or `HOSTNAME`.
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Published on the actor system's event stream when the provider loses or regains the API
/// server (also logged). While it is unreachable the member keeps its last member list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesApiStatus {
    /// The cluster name.
    pub cluster: String,
    /// False from the first failed request on, true again after the next success.
    pub reachable: bool,
    /// What failed (when unreachable).
    pub error: Option<String>,
}

/// True for a Kubernetes label value (at most 63 characters: alphanumerics, `-`, `_`, `.`,
/// beginning and ending with an alphanumeric; empty is allowed).
pub fn is_label_value(s: &str) -> bool {
    let b = s.as_bytes();
    if s.is_empty() {
        return true;
    }
    b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// This member's labels, or why its cluster name or a kind cannot be written as one.
pub fn member_labels(cluster: &str, member: &Member) -> Result<BTreeMap<String, String>, String> {
    if cluster.is_empty() || !is_label_value(cluster) {
        return Err(format!(
            "cluster name {cluster:?} is not a Kubernetes label value (at most 63 alphanumerics, '-', '_', '.', alphanumeric at both ends)"
        ));
    }
    if member.id.is_empty() || !is_label_value(&member.id) {
        return Err(format!("member id {:?} is not a label value", member.id));
    }
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_CLUSTER.to_string(), cluster.to_string());
    labels.insert(LABEL_PORT.to_string(), member.port.to_string());
    labels.insert(LABEL_MEMBER_ID.to_string(), member.id.clone());
    for kind in &member.kinds {
        // The part after the prefix's `/` is a label name: the same rule, non-empty.
        let name = format!("kind-{kind}");
        if !is_label_value(&name) {
            return Err(format!(
                "kind {kind:?} cannot be a label (\"kind-{kind}\" must be at most 63 alphanumerics, '-', '_', '.', alphanumeric at the end)"
            ));
        }
        labels.insert(format!("{LABEL_PREFIX}{name}"), "true".to_string());
    }
    Ok(labels)
}

/// The merge patch that sets `ours` and removes every other `cluster.proto.actor/*` label
/// of `existing` (a stale kind of an earlier run, say); `None` when nothing changes.
pub fn labels_patch(
    existing: &BTreeMap<String, String>,
    ours: &BTreeMap<String, String>,
) -> Option<serde_json::Value> {
    let mut changes = serde_json::Map::new();
    for (k, v) in ours {
        if existing.get(k) != Some(v) {
            changes.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
    }
    for k in existing.keys() {
        if k.starts_with(LABEL_PREFIX) && !ours.contains_key(k) {
            changes.insert(k.clone(), serde_json::Value::Null);
        }
    }
    (!changes.is_empty()).then(|| serde_json::json!({ "metadata": { "labels": changes } }))
}

/// The member a pod of `cluster` stands for: `Ok(None)` when it is not one now (another
/// cluster, not running, not ready, terminating, no IP), `Err` when its labels are broken.
pub fn pod_member(pod: &Pod, cluster: &str) -> Result<Option<Member>, String> {
    let no_labels = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&no_labels);
    if labels.get(LABEL_CLUSTER).map(String::as_str) != Some(cluster) {
        return Ok(None);
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let Some(status) = &pod.status else {
        return Ok(None);
    };
    if status.phase.as_deref() != Some("Running") {
        return Ok(None);
    }
    let ip = status
        .pod_ip
        .clone()
        .filter(|ip| !ip.is_empty())
        .or_else(|| {
            status
                .pod_ips
                .as_ref()
                .and_then(|ips| ips.first())
                .map(|ip| ip.ip.clone())
                .filter(|ip| !ip.is_empty())
        });
    let Some(host) = ip else { return Ok(None) };
    let containers_ready = status
        .container_statuses
        .as_ref()
        .is_none_or(|cs| cs.iter().all(|c| c.ready));
    let condition_ready = status
        .conditions
        .as_ref()
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_none_or(|c| c.status == "True");
    if !containers_ready || !condition_ready {
        return Ok(None);
    }
    let port = labels
        .get(LABEL_PORT)
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("bad {LABEL_PORT} label {:?}", labels.get(LABEL_PORT)))?;
    let id = labels
        .get(LABEL_MEMBER_ID)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| format!("no {LABEL_MEMBER_ID} label"))?;
    let kinds = labels
        .iter()
        .filter(|(k, v)| k.starts_with(LABEL_KIND_PREFIX) && v.as_str() == "true")
        .map(|(k, _)| k[LABEL_KIND_PREFIX.len()..].to_string())
        .filter(|k| !k.is_empty())
        .collect::<Vec<_>>();
    Ok(Some(Member::new(host, port, id.clone(), kinds)))
}

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    shared: Arc<Shared>,
}

/// The Kubernetes provider. See the [module docs](self).
pub struct KubernetesProvider {
    config: KubernetesConfig,
    running: Mutex<Option<Running>>,
}

impl KubernetesProvider {
    /// A provider with `config`.
    pub fn new(config: KubernetesConfig) -> Self {
        KubernetesProvider {
            config,
            running: Mutex::new(None),
        }
    }

    fn start(&self, ctx: ProviderContext, member: bool) -> Result<(), ClusterError> {
        let mut running = self.running.lock();
        if running.is_some() {
            return Err(ClusterError::Provider(
                "kubernetes provider already started".into(),
            ));
        }
        let labels = if member {
            Some(
                member_labels(ctx.cluster_name(), ctx.self_member())
                    .map_err(|e| ClusterError::Provider(format!("kubernetes: {e}")))?,
            )
        } else if !is_label_value(ctx.cluster_name()) || ctx.cluster_name().is_empty() {
            return Err(ClusterError::Provider(format!(
                "kubernetes: cluster name {:?} is not a Kubernetes label value",
                ctx.cluster_name()
            )));
        } else {
            None
        };
        // The client's connection pool runs on the actor system's runtime.
        let client = {
            let _in_runtime = ctx.system().runtime().enter();
            Client::try_from(self.config.client.clone())
                .map_err(|e| ClusterError::Provider(format!("kubernetes: client: {e}")))?
        };
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            api: Api::namespaced(client, &self.config.namespace),
            config: self.config.clone(),
            cluster: ctx.cluster_name().to_string(),
            labels,
            reachable: Mutex::new(None),
            refusal: Mutex::new(None),
            reregister: Notify::new(),
        });
        let session = Session {
            shared: shared.clone(),
            ctx: ctx.clone(),
            stop: stop_rx,
        };
        let task = ctx.system().runtime().spawn(session.run());
        *running = Some(Running { stop, task, shared });
        Ok(())
    }
}

impl ClusterProvider for KubernetesProvider {
    fn start_member(&self, ctx: ProviderContext) -> Result<(), ClusterError> {
        self.start(ctx, true)
    }

    fn start_client(&self, ctx: ProviderContext) -> Result<(), ClusterError> {
        self.start(ctx, false)
    }

    fn shutdown(&self, graceful: bool) -> ProviderFuture {
        let running = self.running.lock().take();
        Box::pin(async move {
            let Some(r) = running else { return Ok(()) };
            let _ = r.stop.send(true);
            r.task.abort();
            let _ = r.task.await;
            // Not graceful: the labels stay, as after a crash (the pod's end removes it).
            if !graceful || r.shared.labels.is_none() {
                return Ok(());
            }
            r.shared
                .relabel(&BTreeMap::new())
                .await
                .map(|_| {
                    tracing::info!(pod = %r.shared.config.pod_name, "kubernetes: deregistered (labels removed)");
                })
                .map_err(|e| {
                    ClusterError::Provider(format!(
                        "kubernetes: removing the labels of pod {}: {e}",
                        r.shared.config.pod_name
                    ))
                })
        })
    }
}

impl Drop for KubernetesProvider {
    fn drop(&mut self) {
        if let Some(r) = self.running.lock().take() {
            let _ = r.stop.send(true);
            r.task.abort();
        }
    }
}

/// What the provider's task and its shutdown share.
struct Shared {
    api: Api<Pod>,
    config: KubernetesConfig,
    cluster: String,
    /// This member's labels (member mode).
    labels: Option<BTreeMap<String, String>>,
    /// Whether the last request reached the API server (`None` before the first).
    reachable: Mutex<Option<bool>>,
    /// The last refusal logged (an error status), until a request succeeds.
    refusal: Mutex<Option<String>>,
    /// Wakes the registration when this member's labels disappeared.
    reregister: Notify,
}

/// A failed request: the API server answered with an error status, or was not reached.
#[derive(Debug)]
enum Failure {
    /// An error status (`code`); 410 is "resource version too old".
    Status(u16, String),
    /// No answer (connection refused or lost, timeout).
    Unreachable(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(code, m) => write!(f, "{code}: {m}"),
            Failure::Unreachable(m) => write!(f, "{m}"),
        }
    }
}

impl From<kube::Error> for Failure {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(s) => Failure::Status(s.code, s.message.clone()),
            e => Failure::Unreachable(e.to_string()),
        }
    }
}

impl Shared {
    async fn timed<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.config.request_timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(match Failure::from(e) {
                Failure::Status(c, m) => Failure::Status(c, format!("{what}: {m}")),
                Failure::Unreachable(m) => Failure::Unreachable(format!("{what}: {m}")),
            }),
            Err(_) => Err(Failure::Unreachable(format!("{what}: timed out"))),
        }
    }

    /// Sets this member's `cluster.proto.actor/*` labels to `ours` (empty: removes them).
    /// Returns this pod's IP when it has one.
    async fn relabel(&self, ours: &BTreeMap<String, String>) -> Result<Option<String>, Failure> {
        let name = &self.config.pod_name;
        let pod = self.timed("get own pod", self.api.get(name)).await?;
        let existing = pod.metadata.labels.clone().unwrap_or_default();
        if let Some(patch) = labels_patch(&existing, ours) {
            self.timed(
                "patch own pod's labels",
                self.api
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch)),
            )
            .await?;
        }
        Ok(pod.status.and_then(|s| s.pod_ip))
    }
}

/// The provider's task: registration (member mode) and the list-and-watch loop.
struct Session {
    shared: Arc<Shared>,
    ctx: ProviderContext,
    stop: watch::Receiver<bool>,
}

/// Why a watch ended.
enum WatchEnd {
    /// Stopped for good.
    Stopped,
    /// List again (410 Gone).
    Relist,
    /// Watch again from the last resource version (closed, broken or silent).
    Rewatch,
}

impl Session {
    async fn run(self) {
        let register = self.register_loop();
        let watch = self.watch_loop();
        tokio::join!(register, watch);
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow() || self.ctx.is_shut_down()
    }

    /// Waits `d`; false when stopped meanwhile.
    async fn pause(&self, d: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => !self.stopped(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    /// Logs and publishes a change of reachability.
    fn report(&self, outcome: Result<(), &Failure>) {
        let reachable = !matches!(outcome, Err(Failure::Unreachable(_)));
        let before = self.shared.reachable.lock().replace(reachable);
        // A refusal repeats every retry (a deleted own pod: 404): logged when it changes.
        let refusal = match outcome {
            Err(Failure::Status(code, m)) => Some(format!("{code}: {m}")),
            _ => None,
        };
        let mut last = self.shared.refusal.lock();
        if refusal.is_some() && *last != refusal {
            tracing::warn!(cluster = %self.shared.cluster, error = %refusal.as_deref().unwrap_or(""), "kubernetes: the API server refused a request; retrying");
        }
        if refusal.is_some() || outcome.is_ok() {
            *last = refusal;
        }
        drop(last);
        if before == Some(reachable) {
            return;
        }
        let error = match outcome {
            Err(Failure::Unreachable(m)) => Some(m.clone()),
            _ => None,
        };
        if reachable {
            if before.is_some() {
                tracing::info!(cluster = %self.shared.cluster, "kubernetes: the API server is reachable again");
            }
        } else {
            tracing::warn!(
                cluster = %self.shared.cluster,
                error = %error.as_deref().unwrap_or(""),
                members = self.ctx.member_list().members().len(),
                "kubernetes: the API server is unreachable; keeping the last member list and serving, retrying"
            );
        }
        if before.is_some() || !reachable {
            self.ctx
                .system()
                .event_stream()
                .publish(&KubernetesApiStatus {
                    cluster: self.shared.cluster.clone(),
                    reachable,
                    error,
                });
        }
    }

    async fn register_loop(&self) {
        let Some(labels) = self.shared.labels.clone() else {
            return;
        };
        loop {
            match self.shared.relabel(&labels).await {
                Ok(ip) => {
                    self.report(Ok(()));
                    let me = self.ctx.self_member();
                    tracing::info!(pod = %self.shared.config.pod_name, member = %me.id, "kubernetes: registered (pod labelled)");
                    if let Some(ip) = ip.filter(|ip| *ip != me.host) {
                        tracing::warn!(pod_ip = %ip, advertised = %me.host, "kubernetes: the pod IP differs from the advertised host; members read the pod IP (advertise the pod IP)");
                    }
                    let mut stop = self.stop.clone();
                    tokio::select! {
                        _ = self.shared.reregister.notified() => {
                            tracing::warn!(pod = %self.shared.config.pod_name, "kubernetes: this member's labels are gone; labelling the pod again");
                        }
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
                Err(e) => {
                    self.report(Err(&e));
                    tracing::debug!(error = %e, "kubernetes: registration failed; retrying");
                    if !self.pause(self.shared.config.retry_interval).await {
                        return;
                    }
                }
            }
            if self.stopped() {
                return;
            }
        }
    }

    async fn watch_loop(&self) {
        let selector = KubernetesConfig::label_selector(&self.shared.cluster);
        // Pod name -> the member it stands for (None: a pod of the cluster, not a member now).
        let mut pods: BTreeMap<String, Option<Member>> = BTreeMap::new();
        loop {
            if self.stopped() {
                return;
            }
            let listed = self
                .shared
                .timed(
                    "list pods",
                    self.shared
                        .api
                        .list(&ListParams::default().labels(&selector)),
                )
                .await;
            let list = match listed {
                Ok(l) => l,
                Err(e) => {
                    self.report(Err(&e));
                    if !self.pause(self.shared.config.retry_interval).await {
                        return;
                    }
                    continue;
                }
            };
            self.report(Ok(()));
            pods.clear();
            for pod in &list.items {
                self.apply(&mut pods, pod, false);
            }
            self.publish(&pods);
            let mut version = list.metadata.resource_version.unwrap_or_default();
            loop {
                match self.watch_once(&selector, &mut version, &mut pods).await {
                    WatchEnd::Stopped => return,
                    WatchEnd::Relist => {
                        tracing::info!(cluster = %self.shared.cluster, version = %version, "kubernetes: resource version expired (410 Gone); listing the pods again");
                        break;
                    }
                    WatchEnd::Rewatch => {}
                }
            }
        }
    }

    /// One watch from `version`, applying its events, until it ends.
    async fn watch_once(
        &self,
        selector: &str,
        version: &mut String,
        pods: &mut BTreeMap<String, Option<Member>>,
    ) -> WatchEnd {
        use futures_util::StreamExt;
        let secs = self
            .shared
            .config
            .watch_timeout
            .as_secs()
            .clamp(1, u32::MAX as u64) as u32;
        let params = WatchParams::default().labels(selector).timeout(secs);
        let stream = match self
            .shared
            .timed("watch pods", self.shared.api.watch(&params, version))
            .await
        {
            Ok(s) => s,
            Err(Failure::Status(410, _)) => return WatchEnd::Relist,
            Err(e) => {
                self.report(Err(&e));
                return if self.pause(self.shared.config.retry_interval).await {
                    WatchEnd::Rewatch
                } else {
                    WatchEnd::Stopped
                };
            }
        };
        self.report(Ok(()));
        let mut stream = std::pin::pin!(stream);
        // The server ends the watch after `secs`; silence well past that is a dead connection.
        let silence = self.shared.config.watch_timeout + self.shared.config.request_timeout;
        let mut stop = self.stop.clone();
        loop {
            let next = tokio::select! {
                _ = stop.wait_for(|s| *s) => return WatchEnd::Stopped,
                n = tokio::time::timeout(silence, stream.next()) => n,
            };
            let event = match next {
                Err(_) => {
                    tracing::warn!(cluster = %self.shared.cluster, "kubernetes: the pod watch went silent; watching again");
                    return WatchEnd::Rewatch;
                }
                Ok(None) => return WatchEnd::Rewatch,
                Ok(Some(Err(e))) => {
                    return match Failure::from(e) {
                        Failure::Status(410, _) => WatchEnd::Relist,
                        f => {
                            self.report(Err(&f));
                            if self.pause(self.shared.config.retry_interval).await {
                                WatchEnd::Rewatch
                            } else {
                                WatchEnd::Stopped
                            }
                        }
                    };
                }
                Ok(Some(Ok(ev))) => ev,
            };
            match event {
                WatchEvent::Added(pod) | WatchEvent::Modified(pod) => {
                    set_version(version, &pod);
                    self.apply(pods, &pod, false);
                }
                WatchEvent::Deleted(pod) => {
                    set_version(version, &pod);
                    self.apply(pods, &pod, true);
                }
                WatchEvent::Bookmark(b) => {
                    *version = b.metadata.resource_version;
                    continue;
                }
                WatchEvent::Error(s) if s.code == 410 => return WatchEnd::Relist,
                WatchEvent::Error(s) => {
                    tracing::warn!(cluster = %self.shared.cluster, code = s.code, error = %s.message, "kubernetes: the pod watch reported an error; watching again");
                    return WatchEnd::Rewatch;
                }
            }
            self.publish(pods);
        }
    }

    /// Records what `pod` now means (`deleted`: it left the selection or was deleted).
    fn apply(&self, pods: &mut BTreeMap<String, Option<Member>>, pod: &Pod, deleted: bool) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let own = name == self.shared.config.pod_name;
        if deleted {
            pods.remove(&name);
            if own && self.shared.labels.is_some() && !self.stopped() {
                self.shared.reregister.notify_one();
            }
            return;
        }
        match pod_member(pod, &self.shared.cluster) {
            Ok(m) => {
                pods.insert(name, m);
            }
            Err(e) => {
                tracing::warn!(pod = %name, error = %e, "kubernetes: skipping a pod whose labels do not make a member");
                pods.insert(name, None);
            }
        }
    }

    /// Publishes the member list: this member (member mode) and every member pod.
    fn publish(&self, pods: &BTreeMap<String, Option<Member>>) {
        let me = self
            .shared
            .labels
            .as_ref()
            .map(|_| self.ctx.self_member().clone());
        let mut all: Vec<Member> = me.iter().cloned().collect();
        all.extend(
            pods.values()
                .flatten()
                .filter(|m| me.as_ref().is_none_or(|me| me.id != m.id))
                .cloned(),
        );
        self.ctx.update_members(all);
    }
}

fn set_version(version: &mut String, pod: &Pod) {
    if let Some(v) = &pod.metadata.resource_version {
        *version = v.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodIP, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn running_pod(l: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                labels: Some(labels(l)),
                ..Default::default()
            },
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some("10.0.0.7".into()),
                pod_ips: Some(vec![PodIP {
                    ip: "10.0.0.7".into(),
                }]),
                container_statuses: Some(vec![ContainerStatus {
                    name: "member".into(),
                    ready: true,
                    ..Default::default()
                }]),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    const GO_LABELS: &[(&str, &str)] = &[
        ("app", "x"),
        ("cluster.proto.actor/cluster", "c"),
        ("cluster.proto.actor/port", "8090"),
        ("cluster.proto.actor/member-id", "0123abcd"),
        ("cluster.proto.actor/kind-hello", "true"),
        ("cluster.proto.actor/kind-prototopic", "true"),
    ];

    #[test]
    fn a_ready_running_pod_with_go_labels_is_a_member() {
        let m = pod_member(&running_pod(GO_LABELS), "c").unwrap().unwrap();
        assert_eq!(
            m,
            Member::new("10.0.0.7", 8090, "0123abcd", ["hello", "prototopic"])
        );
        // Another cluster's pod is nobody.
        assert_eq!(pod_member(&running_pod(GO_LABELS), "d"), Ok(None));
    }

    #[test]
    fn pods_that_are_not_members_now() {
        type Change = Box<dyn Fn(&mut Pod)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "pending",
                Box::new(|p| p.status.as_mut().unwrap().phase = Some("Pending".into())),
            ),
            ("no status", Box::new(|p| p.status = None)),
            (
                "no IP",
                Box::new(|p| {
                    let s = p.status.as_mut().unwrap();
                    s.pod_ip = None;
                    s.pod_ips = None;
                }),
            ),
            (
                "a container not ready",
                Box::new(|p| {
                    p.status
                        .as_mut()
                        .unwrap()
                        .container_statuses
                        .as_mut()
                        .unwrap()[0]
                        .ready = false
                }),
            ),
            (
                "Ready condition False",
                Box::new(|p| {
                    p.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status =
                        "False".into()
                }),
            ),
            (
                "terminating",
                Box::new(|p| {
                    p.metadata.deletion_timestamp = Some(Time(Default::default()));
                }),
            ),
        ];
        for (what, change) in cases {
            let mut pod = running_pod(GO_LABELS);
            change(&mut pod);
            assert_eq!(pod_member(&pod, "c"), Ok(None), "{what}");
        }
        // Only podIPs (no podIP): its first entry is the host.
        let mut pod = running_pod(GO_LABELS);
        pod.status.as_mut().unwrap().pod_ip = None;
        assert_eq!(pod_member(&pod, "c").unwrap().unwrap().host, "10.0.0.7");
    }

    #[test]
    fn broken_labels_are_errors_not_members() {
        for (k, v) in [
            ("cluster.proto.actor/port", "x"),
            ("cluster.proto.actor/port", "0"),
            ("cluster.proto.actor/port", "70000"),
            ("cluster.proto.actor/member-id", ""),
        ] {
            let mut l = labels(GO_LABELS);
            l.insert(k.into(), v.into());
            let mut pod = running_pod(&[]);
            pod.metadata.labels = Some(l);
            assert!(pod_member(&pod, "c").is_err(), "{k}={v}");
        }
    }

    #[test]
    fn labels_are_gos_and_invalid_names_are_refused() {
        let me = Member::new("10.0.0.7", 8090, "0123abcd", ["hello", "prototopic"]);
        let l = member_labels("c", &me).unwrap();
        let go: BTreeMap<String, String> = labels(&GO_LABELS[1..]);
        assert_eq!(l, go);
        // And they read back as the same member.
        let mut pod = running_pod(&[]);
        pod.metadata.labels = Some(l);
        assert_eq!(pod_member(&pod, "c").unwrap().unwrap(), me);

        assert!(member_labels("my cluster", &me).is_err());
        assert!(member_labels("", &me).is_err());
        assert!(member_labels(&"c".repeat(64), &me).is_err());
        let bad_kind = Member::new("h", 1, "id", ["Hello World"]);
        assert!(member_labels("c", &bad_kind).is_err());
        let long_kind = Member::new("h", 1, "id", ["k".repeat(59)]);
        assert!(member_labels("c", &long_kind).is_err());
        assert!(is_label_value("a.b_c-9") && !is_label_value("-a") && !is_label_value("a_"));
    }

    #[test]
    fn the_patch_sets_ours_and_drops_stale_proto_labels_only() {
        let existing = labels(&[
            ("app", "x"),
            ("cluster.proto.actor/cluster", "c"),
            ("cluster.proto.actor/kind-old", "true"),
        ]);
        let ours = labels(&[
            ("cluster.proto.actor/cluster", "c"),
            ("cluster.proto.actor/port", "1"),
        ]);
        assert_eq!(
            labels_patch(&existing, &ours).unwrap(),
            serde_json::json!({"metadata": {"labels": {
                "cluster.proto.actor/port": "1",
                "cluster.proto.actor/kind-old": null,
            }}})
        );
        // Deregistration: every proto label goes, the others stay.
        assert_eq!(
            labels_patch(&existing, &BTreeMap::new()).unwrap(),
            serde_json::json!({"metadata": {"labels": {
                "cluster.proto.actor/cluster": null,
                "cluster.proto.actor/kind-old": null,
            }}})
        );
        assert_eq!(labels_patch(&ours, &ours), None);
    }
}
