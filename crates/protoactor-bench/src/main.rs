//! `protoactor-bench`: runs the same workloads on protoactor-rs, protoactor-go, kameo, ractor
//! and actix, side by side, and prints a table (median, min–max, peak RSS, ratio to Go).
//!
//! ```text
//! cargo run --release -p protoactor-bench -- [WORKLOAD|all] [--quick] [--json FILE] [--rounds N] [--compare FILE] [--allow-busy]
//! ```
//!
//! Every measurement runs in its own child process (this binary re-executed with the hidden
//! `__run` subcommand, or the Go program), so the peak RSS of a row is that implementation's
//! alone and one implementation's leftovers never slow the next. The `remote` workload's
//! protoactor-rs nodes are the hidden `__remote-server` / `__remote-client` subcommands, the
//! `cluster` workload's members `__cluster-member` / `__cluster-caller`, the `pubsub`
//! workload's `__pubsub-member` / `__pubsub-publisher`. `cluster-scale [GRAINS...]` is a
//! measurement of its own (a topology change at scale, `cluster_scale`).
//!
//! # Layers
//!
//! Bottom up: a module names (`crate::module`) only modules of its own layer or of lower
//! ones, never in a cycle (`scripts/check-layers.sh`, run by CI).
//!
//! ```text
//!  0 base       common, alloc, workloads, machine, spawn_stats
//!                 shared metrics and memory readings, the child's allocator, the workloads,
//!                 the machine's load and CPU steal, the spawn rounds' per-thread counts
//!  1 shared     framework, report
//!                 the trait of the Rust implementations; tables and JSON
//!  2 impls      actix_impl, kameo_impl, ractor_impl, persistence_rs, remote_rs, persistent_grains_rs
//!                 the implementations and the protoactor-rs remote, persistence and
//!                 persistent-grain sides
//!  3 composite  protoactor_rs, cluster_rs, cluster_scale
//!                 protoactor-rs's local workloads, the cluster members, the scale run
//!  4 pubsub     pubsub_rs
//!                 the pub/sub members (on the cluster members' start)
//!  5 parent     harness
//!                 options, the Go program, one child process per measurement
//! ```

#![deny(unsafe_code)]

mod actix_impl;
mod alloc;
mod cluster_rs;
mod cluster_scale;
mod common;
mod framework;
mod harness;
mod kameo_impl;
mod machine;
mod persistence_rs;
mod persistent_grains_rs;
mod protoactor_rs;
mod pubsub_rs;
mod ractor_impl;
mod remote_rs;
mod report;
mod spawn_stats;
mod workloads;

use std::process::ExitCode;

use common::RunResult;
use framework::run;

/// The system allocator, able to count the live heap for the `idle-memory` rows.
#[global_allocator]
static ALLOC: alloc::CountingAlloc = alloc::CountingAlloc;

const USAGE: &str = "\
usage: protoactor-bench [WORKLOAD|all] [--quick] [--json FILE] [--rounds N] [--only IMPL,...]
                        [--compare FILE] [--allow-busy]

Runs every implementation of each workload in rounds (each round runs all of them back to
back, in alternating order) and prints median, min-max, peak RSS and the ratio to
protoactor-go (above 1 is better than Go): the median and min-max of the per-round ratios.
  --quick      tiny sizes, one round (CI: keeps every implementation working)
  --json FILE  also write the run as JSON (the machine's load, CPU steal and other
               processes' CPU use at the start, the end and during each workload; the rows).
               Refused when the 1-minute load average at the start is above 1.0
  --allow-busy write the JSON even then; every row is marked busy (so are the rows of a
               workload during which other processes used > 0.25 cores or steal was > 5%)
  --rounds N   rounds per workload (default 5, quick 1)
  --compare F  mark the rows that moved more than 25% since the run in JSON file F
  --only LIST  only these implementations (protoactor-rs,protoactor-go,kameo,ractor,actix;
               protoactor-rs includes protoactor-rs-pinned, which runs the single-chain
               rows with their actors on one pinned thread, and, built with
               --features mimalloc, protoactor-rs-mimalloc: protoactor-rs on mimalloc)
  --list       list the workloads and their sizes";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__run") {
        return child_main(&args[1..]);
    }
    // The remote workload's protoactor-rs nodes (see `remote_rs`).
    let node = match args.first().map(String::as_str) {
        Some("__remote-server") => Some(remote_rs::server_main(&args[1..])),
        Some("__remote-client") => Some(remote_rs::client_main(&args[1..])),
        // The cluster workload's members (see `cluster_rs`).
        Some("__cluster-member") => Some(cluster_rs::member_main(&args[1..])),
        Some("__cluster-caller") => Some(cluster_rs::caller_main(&args[1..])),
        // The pubsub workload's members (see `pubsub_rs`).
        Some("__pubsub-member") => Some(pubsub_rs::member_main(&args[1..])),
        Some("__pubsub-publisher") => Some(pubsub_rs::publisher_main(&args[1..])),
        Some("__cluster-caller-management") => Some(cluster_rs::caller_management_main(&args[1..])),
        // What recording one grain call's latency costs (see `cluster_rs`).
        Some("__latency-record") => Some(cluster_rs::latency_record_main(&args[1..])),
        // The scale measurement and its members (see `cluster_scale`).
        Some("cluster-scale") => Some(cluster_scale::main(&args[1..])),
        Some("__scale-member") => Some(cluster_scale::member_main(&args[1..])),
        _ => None,
    };
    if let Some(r) = node {
        if let Err(e) = r {
            eprintln!("protoactor-bench {}: {e}", args[0]);
            std::process::exit(1);
        }
        // Leftover actors must not delay the exit.
        std::process::exit(0);
    }
    match harness::Options::parse(&args) {
        Ok(Some(opts)) => harness::run(&opts),
        Ok(None) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("protoactor-bench: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `__run IMPL WORKLOAD SIZES...`: runs one measurement and prints `RESULT` and `RSS` lines.
fn child_main(args: &[String]) -> ExitCode {
    let (Some(imp), Some(workload)) = (args.first(), args.get(1)) else {
        eprintln!("__run: usage: __run IMPL WORKLOAD SIZES...");
        return ExitCode::from(2);
    };
    let sizes: Result<Vec<u64>, _> = args[2..].iter().map(|s| s.parse::<u64>()).collect();
    let Ok(sizes) = sizes else {
        eprintln!("__run: sizes must be whole numbers: {:?}", &args[2..]);
        return ExitCode::from(2);
    };
    #[cfg(feature = "mimalloc")]
    if imp == "protoactor-rs-mimalloc" {
        // Before the implementation allocates anything (see `alloc`).
        alloc::use_mimalloc();
    }
    if workload == "idle-memory" {
        // Before anything is allocated that the row could count (see `alloc`).
        alloc::start_counting();
    }
    let result: RunResult = match imp.as_str() {
        "protoactor-rs" => run::<protoactor_rs::ProtoActor>(workload, &sizes),
        "protoactor-rs-pinned" => run::<protoactor_rs::ProtoActorPinned>(workload, &sizes),
        #[cfg(feature = "mimalloc")]
        "protoactor-rs-mimalloc" => run::<protoactor_rs::ProtoActor>(workload, &sizes),
        "kameo" => run::<kameo_impl::Kameo>(workload, &sizes),
        "ractor" => run::<ractor_impl::Ractor>(workload, &sizes),
        "actix" => run::<actix_impl::Actix>(workload, &sizes),
        other => Err(format!("unknown implementation {other}")),
    };
    match result {
        Ok(metrics) => {
            common::report_to_parent(&metrics);
            // Leftover actors must not delay the exit (their runtimes are torn down here).
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("{imp} {workload}: {e}");
            std::process::exit(1)
        }
    }
}
