//! The skip rule of the suites that need something outside Rust (Go, etcd, PostgreSQL): a
//! test without it prints a loud SKIPPED line and passes, unless its variable is set to
//! `required` (as CI does), where it fails.

use std::io::Write;

/// True when `var` (e.g. `PROTOACTOR_INTEROP`) is `required`.
pub fn required(var: &str) -> bool {
    std::env::var(var).as_deref() == Ok("required")
}

/// `None` after a loud SKIPPED line saying `what` is not run and `why`; panics instead when
/// `var` is `required`.
pub fn unavailable<T>(var: &str, what: &str, why: &str) -> Option<T> {
    if required(var) {
        panic!("{what} is required ({var}=required): {why}");
    }
    // The real stderr: the test harness hides `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!! SKIPPED: {what} not run: {why} (set {var}=required to fail instead) !!!!!\n"
    );
    None
}
