//! The Rust side of gocluster's line protocol: a Rust member in a child process (this test
//! binary re-run by [`MemberProcess::rust`](super::MemberProcess::rust)), answering the
//! commands gocluster answers, with the same answer lines.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use protoactor::prelude::ActorSystem;
#[cfg(feature = "consul")]
use protoactor_cluster::consul::{ConsulConfig, ConsulProvider};
#[cfg(feature = "etcd")]
use protoactor_cluster::etcd::{EtcdConfig, EtcdProvider};
#[cfg(feature = "etcd")]
use protoactor_cluster::etcd_lookup::{EtcdIdentityLookup, EtcdLookupConfig};
use protoactor_cluster::gossip::Gossiper;
use protoactor_cluster::{CallOptions, Cluster, ClusterError, ClusterIdentity, GrainRequest, Kind};
use protoactor_remote::Remote;

use super::activations::logged_hello_props;
use super::hello::{HelloRequest, HelloResponse};
use super::protocol::*;
use super::scenario::{automanaged, Node, NodeBuilder};
use crate::process::say;

/// Starts a Rust member of `cluster` hosting the hello grain under `kinds` on `provider`
/// (the member a [`MemberProcess::rust`](super::MemberProcess::rust) child runs).
///
/// With [`ENV_ACTIVATION_LOG`] set, the grains log their lives to that file
/// ([`super::activations`]); with [`ENV_LOOKUP`] `etcd` (etcd provider only), the member uses
/// the strongly consistent etcd identity lookup on the provider's endpoints.
pub fn start_rust_member(cluster: &str, provider: &Provider, kinds: &[&str]) -> Node {
    let mut b = NodeBuilder::new(cluster);
    b = match std::env::var_os(ENV_ACTIVATION_LOG) {
        Some(path) => {
            let props = logged_hello_props(std::path::Path::new(&path));
            kinds
                .iter()
                .fold(b, |b, k| b.with_kind(Kind::new(*k, props.clone())))
        }
        None => b.with_hello_kinds(kinds),
    };
    match provider {
        Provider::AutoManaged { auto_port, peers } => {
            b.member(automanaged(*auto_port, peers, Duration::from_secs(1)))
        }
        #[cfg(feature = "etcd")]
        Provider::Etcd { endpoints } => {
            let eps: Vec<String> = endpoints
                .split(',')
                .filter(|e| !e.is_empty())
                .map(String::from)
                .collect();
            if std::env::var(ENV_LOOKUP).is_ok_and(|l| l == "etcd") {
                let eps = eps.clone();
                b = b.with_identity_lookup(move || {
                    EtcdIdentityLookup::new(EtcdLookupConfig::new(eps.clone()))
                });
            }
            b.member(EtcdProvider::new(
                EtcdConfig::new(eps).with_retry_interval(Duration::from_millis(200)),
            ))
        }
        #[cfg(feature = "consul")]
        Provider::Consul { agent } => {
            b.member(ConsulProvider::new(ConsulConfig::new(agent.as_str())))
        }
        // Go members on these providers need no Rust provider; a Rust one needs the feature
        // (the cluster crate's `etcd` / `consul` features forward to this crate's).
        #[cfg(not(feature = "etcd"))]
        Provider::Etcd { .. } => {
            panic!("a Rust etcd member needs protoactor-testkit's `etcd` feature")
        }
        #[cfg(not(feature = "consul"))]
        Provider::Consul { .. } => {
            panic!("a Rust consul member needs protoactor-testkit's `consul` feature")
        }
    }
}

fn members_line(cluster: &Cluster) -> String {
    let mut s = String::from("MEMBERS");
    for m in cluster.member_list().members() {
        let mut kinds = m.kinds.clone();
        kinds.sort();
        s.push_str(&format!(" {}@{}[{}]", m.id, m.address(), kinds.join(",")));
    }
    s
}

fn gossip_seqs(cluster: &Cluster, key: &str) -> BTreeMap<String, i64> {
    cluster
        .system()
        .extension::<Gossiper>()
        .map(|g| {
            g.get_state(key)
                .into_iter()
                .map(|(id, v)| (id, v.sequence_number))
                .collect()
        })
        .unwrap_or_default()
}

fn gossip_line(cluster: &Cluster, key: &str) -> String {
    let mut s = String::from("GOSSIP");
    for (id, seq) in gossip_seqs(cluster, key) {
        s.push_str(&format!(" {id}={seq}"));
    }
    s
}

/// A call's answer in the protocol's words (the same as gocluster's).
fn reply_line(r: Result<HelloResponse, ClusterError>) -> String {
    match r {
        Ok(r) => format!(
            "REPLY {} {} {} {}",
            r.kind, r.identity, r.address, r.message
        ),
        Err(ClusterError::Grain(e)) => format!(
            "ERROR grain error {}: {}",
            e.reason,
            e.message.replace('\n', " ")
        ),
        Err(e) => format!("ERROR {}", e.to_string().replace('\n', " ")),
    }
}

/// Answers one protocol command on `cluster` (the answer line).
pub fn handle(cluster: &Cluster, line: &str) -> String {
    let f: Vec<&str> = line.split_whitespace().collect();
    let opts = CallOptions::default();
    match f.as_slice() {
        ["call", kind, identity, name] => {
            let req = HelloRequest {
                name: name.to_string(),
            };
            reply_line(
                cluster.request_blocking_as::<HelloResponse, _>(*identity, *kind, req, &opts),
            )
        }
        ["gcall", kind, identity, name, method @ ..] if method.len() <= 1 => {
            let Ok(method) = method.first().map_or(Ok(0), |m| m.parse::<i32>()) else {
                return format!("ERROR bad method index {method:?}");
            };
            let req = GrainRequest::new(
                method,
                &HelloRequest {
                    name: name.to_string(),
                },
            );
            reply_line(
                cluster.request_blocking_as::<HelloResponse, _>(*identity, *kind, req, &opts),
            )
        }
        ["owner", kind, ids @ ..] => {
            let futs: Vec<_> = ids
                .iter()
                .map(|id| cluster.get(&ClusterIdentity::new(*id, *kind)))
                .collect();
            let rt = cluster.system().runtime().clone();
            let results = rt.block_on(async move {
                let mut set = tokio::task::JoinSet::new();
                for (i, f) in futs.into_iter().enumerate() {
                    set.spawn(async move { (i, f.await) });
                }
                let mut out = vec![None; set.len()];
                while let Some(Ok((i, r))) = set.join_next().await {
                    out[i] = r.ok();
                }
                out
            });
            let mut s = String::from("OWNER");
            for (id, pid) in ids.iter().zip(results) {
                match pid {
                    Some(p) => s.push_str(&format!(" {id}={}|{}", p.address(), p.id())),
                    None => s.push_str(&format!(" {id}=-")),
                }
            }
            s
        }
        ["members"] => members_line(cluster),
        [cmd @ ("await-members" | "await-absent"), ms, ids @ ..] => {
            let Ok(ms) = ms.parse::<u64>() else {
                return format!("ERROR bad timeout {ms}");
            };
            let present = *cmd == "await-members";
            let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
            let ml = cluster.member_list().clone();
            let ok = cluster.system().runtime().block_on(async move {
                ml.wait_until(Duration::from_millis(ms), |t| {
                    ids.iter().all(|id| t.member(id).is_some() == present)
                })
                .await
            });
            if ok {
                members_line(cluster)
            } else {
                format!("ERROR timeout; {}", members_line(cluster))
            }
        }
        ["blocked"] => format!("BLOCKED {}", cluster.member_list().blocked().join(" ")),
        ["gossip", key] => gossip_line(cluster, key),
        ["await-gossip", ms, key, want @ ..] => {
            let Ok(ms) = ms.parse::<u64>() else {
                return format!("ERROR bad timeout {ms}");
            };
            let mut mins = Vec::new();
            for w in want {
                match w
                    .split_once('=')
                    .and_then(|(id, n)| Some((id, n.parse::<i64>().ok()?)))
                {
                    Some(x) => mins.push(x),
                    None => return format!("ERROR bad entry {w} (want id=seq)"),
                }
            }
            let reached = crate::wait::wait_until(Duration::from_millis(ms), || {
                let seqs = gossip_seqs(cluster, key);
                mins.iter()
                    .all(|(id, min)| seqs.get(*id).is_some_and(|s| s >= min))
            });
            if reached {
                gossip_line(cluster, key)
            } else {
                format!("ERROR timeout; {}", gossip_line(cluster, key))
            }
        }
        _ => format!("ERROR unknown command {line}"),
    }
}

/// The provider, cluster name and kinds the parent put in the child's environment.
fn from_env() -> (String, Provider, Vec<String>) {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let split = |s: String| -> Vec<String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    };
    let provider = if std::env::var_os(ENV_CONSUL).is_some() {
        Provider::Consul {
            agent: var(ENV_CONSUL),
        }
    } else if std::env::var_os(ENV_ETCD).is_some() {
        Provider::Etcd {
            endpoints: var(ENV_ETCD),
        }
    } else {
        Provider::AutoManaged {
            auto_port: var(ENV_AUTO_PORT).parse().expect("auto port"),
            peers: split(var(ENV_PEERS)),
        }
    };
    (var(ENV_CLUSTER), provider, split(var(ENV_KINDS)))
}

/// In a child process (started by [`MemberProcess::rust`](super::MemberProcess::rust)),
/// runs a Rust member driven over stdin/stdout with the gocluster protocol until stdin
/// closes, then leaves gracefully. Returns false in the parent test process.
pub fn run_rust_member_if_child() -> bool {
    run_rust_member_if_child_with(|_, _| None)
}

/// [`run_rust_member_if_child`] with more commands: `extra` answers the lines it knows
/// (`Some(answer)`), [`handle`] the others. With no kinds on the automanaged provider the
/// child is a client (`start_client`: polls the peers, hosts nothing, not registered).
pub fn run_rust_member_if_child_with(extra: impl Fn(&Cluster, &str) -> Option<String>) -> bool {
    if !is_member_child() {
        return false;
    }
    if crate::process::verbose() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_writer(std::io::stderr)
            .try_init();
    }
    let (cluster, provider, kinds) = from_env();
    let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
    let node = match &provider {
        Provider::AutoManaged { peers, .. } if kinds.is_empty() => {
            NodeBuilder::new(&cluster).client(automanaged(0, peers, Duration::from_secs(1)))
        }
        _ => start_rust_member(&cluster, &provider, &kinds),
    };
    serve_member_with(node.system, node.remote, node.cluster, extra);
    true
}

/// True in a child process started by [`MemberProcess`] (the test then
/// runs as a member).
pub fn is_member_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Runs a started member for the parent test over stdin/stdout with the gocluster protocol
/// (`READY`, then one answer per command) until stdin closes, then leaves gracefully.
pub fn serve_member(system: ActorSystem, remote: Arc<Remote>, cluster: Cluster) {
    serve_member_with(system, remote, cluster, |_, _| None)
}

/// [`serve_member`] with more commands: `extra` answers the lines it knows, [`handle`] the
/// others.
pub fn serve_member_with(
    system: ActorSystem,
    remote: Arc<Remote>,
    cluster: Cluster,
    extra: impl Fn(&Cluster, &str) -> Option<String>,
) {
    say(&format!("READY {} {}", remote.address(), system.id()));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let answer = extra(&cluster, &line).unwrap_or_else(|| handle(&cluster, &line));
        say(&answer);
    }
    cluster.shutdown_blocking(true);
    remote.shutdown();
    system.shutdown();
}
