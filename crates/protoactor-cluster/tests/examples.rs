//! Smoke test of the crate's `pubsub` example (built by cargo for this test): every subscriber
//! gets every message, in order.

use std::process::Command;
use std::time::Duration;

use protoactor_testkit::paths::example_binary;
use protoactor_testkit::process::run_to_end;

/// Generous bound so a stuck example fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(300);

#[test]
fn pubsub_example_delivers_every_message_in_order_to_each_subscriber() {
    let bin = example_binary("pubsub", "protoactor-cluster");
    let stdout = run_to_end("pubsub", Command::new(bin), LIMIT);
    for who in ["actor on member 1", "actor on member 2", "grain reader"] {
        assert!(
            stdout.contains(&format!("{who} got [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]")),
            "{who} missing or incomplete in:\n{stdout}"
        );
    }
}
