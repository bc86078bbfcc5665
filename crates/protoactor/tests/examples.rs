//! Runs each example binary and checks what it prints.
//!
//! `cargo test` builds the examples of the package before running its tests, into
//! `<target>/<profile>/examples/`; this test binary lives in `<target>/<profile>/deps/`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary is in <target>/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} not found: run the tests with `cargo test -p protoactor` (or --workspace), which \
         builds the examples, not with `--test examples` alone",
        path.display()
    );
    path
}

/// Runs the example (killed after a generous minute, so a hang fails instead of blocking)
/// and returns its stdout lines.
fn run(name: &str) -> Vec<String> {
    let mut child = Command::new(example_path(name))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("poll the example").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("example {name} did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("the example's output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "example {name} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
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
            "timeout: future: timeout"
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
