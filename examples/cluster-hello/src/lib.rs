//! The message types of the cluster examples, generated from `proto/messages.proto` by
//! `build.rs`; the programs are in `src/bin/`.

/// Package `messages`.
pub mod messages {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/messages.rs"));
}

/// Sends the framework's logs to stderr, at the level `RUST_LOG` picks (`info` when unset).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}
