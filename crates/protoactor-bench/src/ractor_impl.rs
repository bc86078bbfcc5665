//! placeholder
use crate::common::RunResult;
/// Runs a workload.
pub fn run(w: &str, _p: &[u64]) -> RunResult { Err(format!("ractor_impl: {w} not written yet")) }
