//! Test support for protoactor-rs's own test suites (not published): everything the remote,
//! cluster and persistence suites need to run real protoactor-go programs, extra Rust
//! processes and shared services, in one place.
//!
//! - [`go`]: builds the Go programs under `interop/` (or any Go package) once per test
//!   binary, with the `PROTOACTOR_INTEROP=required` rule: without `go` a test prints a loud
//!   SKIPPED line and passes, unless required (CI), where it fails.
//! - [`process`]: child processes (Go programs, example binaries, this test binary re-run
//!   as a child) killed when dropped, with their stdout lines on a channel, every wait bounded
//!   by a deadline, and the tail of their stderr in failure messages; [`process::say`] and
//!   [`process::protocol_line`] are the two ends of the `@@ `-prefixed line protocol.
//! - [`ports`]: loopback ports free for a listener a child binds later.
//! - [`wait`]: polling for an observable condition with a deadline (never a fixed sleep).
//! - [`logs`]: the crates' `tracing` logs through the test harness's capture.
//! - [`http`]: a plain HTTP GET (status and body) for tests of HTTP endpoints.
//! - [`services`]: the shared etcd and PostgreSQL servers named by environment variables
//!   (`PROTOACTOR_ETCD=required` / `PROTOACTOR_POSTGRES=required` turn a missing one into a
//!   failure) and private servers started with `scripts/start-etcd.sh` /
//!   `scripts/start-postgres.sh`.
//! - `certs` (feature `certs`): a test CA and the certificates it signs, made at test time
//!   (rcgen), for TLS and mutual-TLS tests.
//! - `cluster` (feature `cluster`): cluster members in other processes driven over the
//!   gocluster line protocol (protoactor-go's `interop/cmd/gocluster` and the Rust member
//!   child), and `cluster::NodeBuilder` for N in-process members of one
//!   provider. Rust members on the etcd or consul provider need the features `etcd` /
//!   `consul` (each implies `cluster` and enables protoactor-cluster's feature of the same
//!   name, which forwards to them); Go members on those providers need neither.
//!
//! Layers, bottom to top (a module names only modules of its own or lower layers, never in a
//! cycle; `scripts/check-layers.sh` checks this table):
//!
//! ```text
//!  0 base        paths, skip, ports, wait, http, certs, logs
//!  1 tools       go, process, services
//!  2 cluster     cluster
//! ```
//!
//! Inside `cluster`: `hello`, `activations`, `protocol`, `scenario`, `load`, `child`,
//! bottom-up.
//!
//! # Example
//!
//! A Go program started, asked one line and stopped (skipped without `go`):
//!
//! ```no_run
//! use std::time::Duration;
//! use protoactor_testkit::{go, process::ChildProcess};
//!
//! let Some(bin) = go::go_program("gonode", "Go node example") else {
//!     return; // no `go`: a loud SKIPPED line was printed
//! };
//! let mut node = ChildProcess::spawn("go", std::process::Command::new(bin), |line| {
//!     line.contains("READY ").then(|| line.to_string())
//! });
//! let ready = node.next_line("READY", Duration::from_secs(60));
//! assert!(ready.contains("READY "));
//! // Dropping `node` kills the process.
//! ```
//!
//! Waiting for an observable condition with a deadline:
//!
//! ```
//! use std::time::Duration;
//! let mut n = 0;
//! let got = protoactor_testkit::wait::poll_until("n reaches 3", Duration::from_secs(5), || {
//!     n += 1;
//!     (n >= 3).then_some(n)
//! });
//! assert_eq!(got, 3);
//! ```

pub mod go;
pub mod http;
pub mod logs;
pub mod paths;
pub mod ports;
pub mod process;
pub mod services;
pub mod skip;
pub mod wait;

#[cfg(feature = "certs")]
pub mod certs;
#[cfg(feature = "cluster")]
pub mod cluster;
