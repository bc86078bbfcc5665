//! One cluster member on the automanaged provider; run it once per process to get a cluster
//! of processes with no membership service (two terminals):
//!
//! ```text
//! cargo run -p protoactor-example-cluster-hello --bin cluster_automanaged -- 6331 6331,6332
//! cargo run -p protoactor-example-cluster-hello --bin cluster_automanaged -- 6332 6331,6332
//! ```
//!
//! Arguments: this member's health port, then every member's health port (or `host:port`).
//! Each member serves `GET /_health` on `127.0.0.1:<port>`, polls the listed endpoints,
//! waits until it sees every listed member, greets a few `hello` grains (printing the member
//! hosting each: both processes print the same), and leaves gracefully on Enter or when
//! stdin closes. A protoactor-go member (`interop/cmd/gocluster`) joins the same way.

use std::io::BufRead;
use std::time::Duration;

use messages::{HelloRequest, HelloResponse};
use protoactor::prelude::*;
use protoactor_cluster::automanaged::{AutoManagedConfig, AutoManagedProvider};
use protoactor_cluster::{
    CallOptions, Cluster, ClusterConfig, DistHashIdentityLookup, GrainContext, Kind,
};
use protoactor_example_cluster_hello::messages;
use protoactor_remote::{Remote, RemoteConfig, WireVariant};

fn hello_kind() -> Kind {
    Kind::new(
        "hello",
        Props::from_func(|ctx| {
            if ctx.message_as::<HelloRequest>().is_some() {
                let me = ctx.cluster_identity().expect("a grain knows its identity");
                let host = ctx.system().address();
                ctx.respond(HelloResponse {
                    message: format!("Hello from grain {} on member {host}", me.identity),
                });
            }
        }),
    )
}

fn main() {
    // Framework logs go to stderr; RUST_LOG picks the level (`info` when unset).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(peers)) = (args.next(), args.next()) else {
        eprintln!("usage: cluster_automanaged <health port> <health port or host:port>,...");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("health port is a number");
    let peers: Vec<String> = peers
        .split(',')
        .map(|p| {
            if p.contains(':') {
                p.to_string()
            } else {
                format!("127.0.0.1:{p}")
            }
        })
        .collect();

    let system = ActorSystem::new();
    // Legacy2024 is what protoactor-go speaks, so Go members can join too.
    let remote = Remote::start(
        &system,
        RemoteConfig::new("127.0.0.1", 0).with_wire_variant(WireVariant::Legacy2024),
    )
    .expect("remote starts");
    remote.serialization().register::<HelloRequest>();
    remote.serialization().register::<HelloResponse>();
    let provider = AutoManagedProvider::new(
        AutoManagedConfig::new(port, peers.clone())
            .with_bind_host("127.0.0.1")
            .with_refresh(Duration::from_millis(500)),
    );
    let config = ClusterConfig::new(
        "cluster-automanaged",
        provider,
        DistHashIdentityLookup::new(),
    )
    .with_kind(hello_kind());
    let cluster = Cluster::start_member(&system, &remote, config).expect("member starts");
    println!("member {} ({})", cluster.address(), system.id());

    let want = peers.len();
    let all_here = system.runtime().block_on(
        cluster
            .member_list()
            .wait_until(Duration::from_secs(120), |t| t.len() >= want),
    );
    assert!(
        all_here,
        "not every listed member showed up within 2 minutes"
    );
    println!("members: {}", cluster.member_list().members().len());

    for identity in ["alice", "bob", "carol", "dave"] {
        let reply: HelloResponse = cluster
            .request_blocking_as(identity, "hello", HelloRequest {}, &CallOptions::default())
            .expect("the grain answers");
        println!("{identity}: {}", reply.message);
    }

    println!("press Enter to leave");
    let _ = std::io::stdin().lock().lines().next();
    cluster.shutdown_blocking(true);
    remote.shutdown();
    system.shutdown();
    println!("left");
}
