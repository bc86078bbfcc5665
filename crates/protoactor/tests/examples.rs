//! Runs each example binary and checks what it prints.
//!
//! `cargo test` builds the examples of the package before running its tests, into
//! `<target>/<profile>/examples/`; this test binary lives in `<target>/<profile>/deps/`.

use std::process::Command;
use std::time::Duration;

use protoactor_testkit::paths::example_binary;
use protoactor_testkit::process::run_to_end;

/// Runs the example (killed after a generous minute, so a hang fails instead of blocking)
/// and returns its stdout lines.
fn run(name: &str) -> Vec<String> {
    let bin = example_binary(name, "protoactor");
    let stdout = run_to_end(name, Command::new(bin), Duration::from_secs(60));
    stdout.lines().map(str::to_owned).collect()
}

#[test]
fn hello_world_prints_hello_roger() {
    assert_eq!(run("hello_world"), ["Hello Roger"]);
}

#[test]
fn behaviors_switches_handler_after_the_first_message() {
    assert_eq!(
        run("behaviors"),
        [
            "Hello Roger",
            "Roger, ey we are now handling messages in another behavior"
        ]
    );
}

#[test]
fn lifecycle_prints_started_hello_stopping_stopped() {
    assert_eq!(
        run("lifecycle"),
        [
            "Started, initialize actor here",
            "Hello Roger",
            "Stopping, actor is about shut down",
            "Stopped, actor and its children are stopped"
        ]
    );
}

#[test]
fn supervision_prints_what_the_go_readme_example_prints() {
    assert_eq!(
        run("supervision"),
        [
            "Starting, initialize actor here",
            "Hello Roger",
            "handling failure for child. reason:Ouch",
            "Restarting, actor is about restart",
            "Starting, initialize actor here"
        ]
    );
}

#[test]
fn middleware_runs_inbound_and_outbound_chains_in_registration_order() {
    assert_eq!(
        run("middleware"),
        [
            "inbound first: Hello",
            "inbound second: Hello",
            "actor: Hello Roger",
            "outbound first: to echo",
            "outbound second: to echo"
        ]
    );
}

#[test]
fn futures_shows_wait_result_pipe_to_reenter_after_and_timeout() {
    let mut lines = run("futures");
    // The timeout names the silent actor's generated PID, the message type and the timeout.
    let timeout = lines.pop().expect("the timeout line");
    assert!(
        timeout.starts_with("timeout: request to nonhost/")
            && timeout.ends_with(" (u32) timed out after 50ms"),
        "{timeout}"
    );
    // The reenter_after pair may print in either order: the continuation is a system
    // message and can overtake the queued "other" message.
    lines[3..5].sort();
    assert_eq!(
        lines,
        [
            "wait: ok",
            "result: 42",
            "pipe_to: 7 arrived",
            "reenter_after: resumed with \"ask\" and 84",
            "reenter_after: still handling other messages",
        ]
    );
}

#[cfg(feature = "tracing-otel")]
#[test]
fn tracing_prints_one_trace_tree() {
    assert_eq!(
        run("tracing"),
        [
            "checkout",
            "  request Order [shop]",
            "    receive Order [shop]",
            "      continue Order [shop]",
            "      receive Audit [shop/audit]",
            "      request Charge [billing]",
            "        receive Charge [billing]",
            "      spawn [shop/audit]",
            "        receive Started [shop/audit]",
        ]
    );
}
