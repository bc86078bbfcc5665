//! Smoke test of the `pubsub` example (built by cargo for this test): every subscriber gets
//! every message, in order, and the acknowledged publish is confirmed.

use std::process::Command;
use std::time::Duration;

use protoactor_testkit::process::run_to_end;

#[test]
fn the_pubsub_example_delivers_every_message_in_order_to_each_subscriber() {
    let bin = env!("CARGO_BIN_EXE_pubsub");
    let stdout = run_to_end("pubsub", Command::new(bin), Duration::from_secs(300));
    for who in ["actor on member 1", "actor on member 2", "grain reader"] {
        assert!(
            stdout.contains(&format!("{who} got [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]")),
            "{who} missing or incomplete in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("acknowledged: every subscriber handled headline 10"),
        "no acknowledgement in:\n{stdout}"
    );
}
