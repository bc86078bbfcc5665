//! Two cluster members in one process (each its own actor system and remote on a loopback
//! port), sharing the in-memory test provider. The `hello` grain kind is hosted on both; a
//! few identities are called through the first member, and each greeting tells which member
//! hosted it.
//!
//! `cargo run -p protoactor-cluster --example cluster_basic`

use std::sync::Arc;
use std::time::Duration;

use protoactor::prelude::*;
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{
    CallOptions, Cluster, ClusterConfig, DistHashIdentityLookup, GrainContext, Kind,
};
use protoactor_remote::messages::{HelloRequest, HelloResponse};
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

fn start_member(agent: &Arc<InMemAgent>) -> (ActorSystem, Cluster) {
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
    let config = ClusterConfig::new(
        "cluster-basic",
        TestProvider::new(agent),
        DistHashIdentityLookup::new(),
    )
    .with_kind(hello_kind());
    let cluster = Cluster::start_member(&system, &remote, config).expect("member starts");
    (system, cluster)
}

fn main() {
    let agent = InMemAgent::new();
    let (system_a, a) = start_member(&agent);
    let (system_b, b) = start_member(&agent);
    println!("members: {} and {}", a.address(), b.address());

    // Wait until the first member sees both (the test provider tells everyone at once).
    let joined = system_a.runtime().block_on(
        a.member_list()
            .wait_until(Duration::from_secs(10), |t| t.len() == 2),
    );
    assert!(joined, "both members joined");

    for identity in ["alice", "bob", "carol", "dave"] {
        let reply: HelloResponse = a
            .request_blocking_as(identity, "hello", HelloRequest {}, &CallOptions::default())
            .expect("the grain answers");
        println!("{identity}: {}", reply.message);
    }

    a.shutdown_blocking(true);
    b.shutdown_blocking(true);
    system_a.shutdown();
    system_b.shutdown();
}
