//! A small cluster under load with its management API and dashboard:
//! `cargo run -p protoactor-cluster --example dashboard --features management [seconds]`
//! starts three members in this process, calls grains on them continuously, and prints the
//! dashboard's URL (open it in a browser). It stops after `seconds` (default: 600).

use std::time::{Duration, Instant};

use protoactor_cluster::management::{ManagementConfig, ManagementServer};
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_testkit::cluster::NodeBuilder;

fn main() {
    // Framework logs go to stderr; RUST_LOG picks the level (`info` when unset).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let agent = InMemAgent::new();
    let nodes = NodeBuilder::new("dashboard")
        .with_hello_kinds(&["hello", "counter"])
        .members(3, || TestProvider::new(&agent));
    let address = std::env::var("DASHBOARD_ADDRESS").unwrap_or_else(|_| "127.0.0.1:0".into());
    let server = ManagementServer::start(
        &nodes[0].cluster,
        ManagementConfig::new(address.parse().expect("DASHBOARD_ADDRESS is host:port")),
    )
    .expect("the management API starts");
    println!("dashboard: {}/dashboard", server.url());
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let end = Instant::now() + Duration::from_secs(seconds);
    rt.block_on(async {
        let mut i = 0u64;
        while Instant::now() < end {
            // Load: calls to a growing set of grains of both kinds, from every member.
            let node = &nodes[(i % 3) as usize];
            let kind = if i.is_multiple_of(2) {
                "hello"
            } else {
                "counter"
            };
            let _ = node
                .hello(kind, &format!("grain-{}", i % 500), "load")
                .await;
            i += 1;
            if i.is_multiple_of(50) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        server.stop();
        for n in nodes {
            n.stop(true).await;
        }
    });
}
