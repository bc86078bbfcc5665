//! Smoke test of the `grains` example (typed grains, a counter persisted in SQLite): the
//! binary (built by cargo for this test) runs, greets, and finds the counter's value
//! again after the idle timeout stopped the grain.

use std::process::Command;
use std::time::Duration;

use protoactor_testkit::process::run_to_end;

#[test]
fn the_grains_example_keeps_the_counter_across_reactivation() {
    let bin = env!("CARGO_BIN_EXE_grains");
    let stdout = run_to_end("grains", Command::new(bin), Duration::from_secs(300));
    let lines: Vec<&str> = stdout.lines().collect();
    for expected in [
        "hello: Hello Ann from grain ann",
        "hello error: INVALID_ARGUMENT who should I greet?",
        "activated visits with value 0",
        "counter: 1, 2, 3",
        "counter stopped after its idle timeout",
        "activated visits with value 3",
        "counter after re-activation: 3",
    ] {
        assert!(lines.contains(&expected), "no {expected:?} in:\n{stdout}");
    }
}
