//! Two cluster members in one process (each its own actor system and remote on a loopback
//! port), sharing the in-memory test provider. The `hello` grain kind is hosted on both; a
//! few identities are called through the first member, and each greeting tells which member
//! hosted it.
//!
//! `cargo run -p protoactor-example-cluster-hello --bin cluster_basic`
//!
//! Built with the `etcd` feature (`--features etcd`) and `PROTOACTOR_ETCD_ENDPOINTS` set (e.g. `export PROTOACTOR_ETCD_ENDPOINTS="$(scripts/start-etcd.sh)"`)
//! the members find each other through etcd instead (the etcd provider, Go's key layout), and
//! `cluster_basic member <n>` runs one member per process: start it in `n` terminals; each
//! waits for `n` members, greets, and leaves on Enter.

use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use messages::{HelloRequest, HelloResponse};
use protoactor::prelude::*;
#[cfg(feature = "etcd")]
use protoactor_cluster::etcd::{EtcdConfig, EtcdProvider};
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{
    CallOptions, Cluster, ClusterConfig, DistHashIdentityLookup, GrainContext, Kind,
};
use protoactor_example_cluster_hello::messages;
use protoactor_remote::{Remote, RemoteConfig, WireVariant};

/// The hello grain: greets with its identity and the member that hosts it.
fn hello_kind() -> Kind {
    Kind::new(
        "hello",
        Props::from_func(|ctx| {
            if ctx.message_as::<HelloRequest>().is_some() {
                let me = ctx.cluster_identity().expect("a grain knows its identity");
                let host = ctx
                    .cluster()
                    .expect("and its cluster")
                    .address()
                    .to_string();
                ctx.respond(HelloResponse {
                    message: format!("Hello from grain {} on member {host}", me.identity),
                });
            }
        }),
    )
}

/// Where the members meet: etcd when `PROTOACTOR_ETCD_ENDPOINTS` is set, else one process's
/// in-memory agent.
enum Membership {
    #[cfg(feature = "etcd")]
    Etcd(Vec<String>),
    InMemory(Arc<InMemAgent>),
}

impl Membership {
    fn from_env() -> Self {
        match std::env::var("PROTOACTOR_ETCD_ENDPOINTS") {
            #[cfg(feature = "etcd")]
            Ok(e) if !e.trim().is_empty() => {
                Membership::Etcd(e.split(',').map(|s| s.trim().to_string()).collect())
            }
            #[cfg(not(feature = "etcd"))]
            Ok(e) if !e.trim().is_empty() => {
                eprintln!("built without the `etcd` feature: PROTOACTOR_ETCD_ENDPOINTS ignored");
                Membership::InMemory(InMemAgent::new())
            }
            _ => Membership::InMemory(InMemAgent::new()),
        }
    }

    /// The config of a member of cluster `name`.
    fn config(&self, name: &str) -> ClusterConfig {
        let lookup = DistHashIdentityLookup::new();
        match self {
            #[cfg(feature = "etcd")]
            Membership::Etcd(endpoints) => ClusterConfig::new(
                name,
                EtcdProvider::new(EtcdConfig::new(endpoints.clone())),
                lookup,
            ),
            Membership::InMemory(agent) => {
                ClusterConfig::new(name, TestProvider::new(agent), lookup)
            }
        }
        .with_kind(hello_kind())
    }
}

fn start_member(membership: &Membership, cluster_name: &str) -> (ActorSystem, Cluster) {
    let system = ActorSystem::new();
    // Legacy2024 is what protoactor-go speaks; the same member could join Go members.
    let remote = Remote::start(
        &system,
        RemoteConfig::local().with_wire_variant(WireVariant::Legacy2024),
    )
    .expect("remote starts");
    // Grain messages cross the wire: register them (the Go side links the same package).
    remote.serialization().register::<HelloRequest>();
    remote.serialization().register::<HelloResponse>();
    let config = membership.config(cluster_name);
    let cluster = Cluster::start_member(&system, &remote, config).expect("member starts");
    (system, cluster)
}

fn greet(cluster: &Cluster) {
    for identity in ["alice", "bob", "carol", "dave"] {
        let reply: HelloResponse = cluster
            .request_blocking_as(identity, "hello", HelloRequest {}, &CallOptions::default())
            .expect("the grain answers");
        println!("{identity}: {}", reply.message);
    }
}

/// `cluster_basic member <n>`: one member of cluster `cluster-basic` on etcd.
fn one_member_per_process(membership: &Membership, n: usize) {
    if matches!(membership, Membership::InMemory(_)) {
        eprintln!(
            "`member` needs PROTOACTOR_ETCD_ENDPOINTS (the in-memory agent spans one process)"
        );
        std::process::exit(2);
    }
    let (system, cluster) = start_member(membership, "cluster-basic");
    println!(
        "member {} ({})",
        cluster.address(),
        cluster.self_member().id
    );
    let all_here = system.runtime().block_on(
        cluster
            .member_list()
            .wait_until(Duration::from_secs(120), |t| t.len() >= n),
    );
    assert!(all_here, "{n} members did not show up within 2 minutes");
    greet(&cluster);
    println!("press Enter to leave");
    let _ = std::io::stdin().lock().lines().next();
    cluster.shutdown_blocking(true);
    system.shutdown();
    println!("left");
}

fn main() {
    // Framework logs go to stderr; RUST_LOG picks the level (`info` when unset).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let membership = Membership::from_env();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [cmd, n] = args.as_slice() {
        if cmd == "member" {
            one_member_per_process(&membership, n.parse().expect("member count"));
            return;
        }
    }
    // A cluster of this run alone (etcd may hold others).
    let name = format!("cluster-basic-{}", std::process::id());
    let (system_a, a) = start_member(&membership, &name);
    let (system_b, b) = start_member(&membership, &name);
    println!("members: {} and {}", a.address(), b.address());
    println!(
        "provider: {}",
        match membership {
            #[cfg(feature = "etcd")]
            Membership::Etcd(_) => "etcd",
            Membership::InMemory(_) => "test",
        }
    );

    // Wait until the first member sees both.
    let joined = system_a.runtime().block_on(
        a.member_list()
            .wait_until(Duration::from_secs(30), |t| t.len() == 2),
    );
    assert!(joined, "both members joined");

    greet(&a);

    a.shutdown_blocking(true);
    b.shutdown_blocking(true);
    system_a.shutdown();
    system_b.shutdown();
}
