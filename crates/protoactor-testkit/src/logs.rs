//! Logs in tests: the crates' `tracing` output through the test harness's capture.

/// Installs a `tracing` subscriber that writes through the test harness's capture (shown
/// for a failed test only), filtered by `RUST_LOG`, else by `default_filter` (`"warn"`).
/// Safe to call from every test of a binary: only the first call installs it.
pub fn init_test_logs(default_filter: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_test_writer()
        .try_init();
}
