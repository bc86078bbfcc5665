//! Builds the Go programs under `interop/cmd/` for the mixed Go/Rust tests, once per test
//! binary. Included by `common` and, alone, by tests that need nothing else of it.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The `interop/` Go module.
pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// `interop/cmd/<cmd>` built, or `None` (after a loud message naming `what` was skipped)
/// when Go is not available; panics when `PROTOACTOR_INTEROP=required`.
pub fn go_program(cmd: &str, what: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Mutex<HashMap<String, Result<PathBuf, String>>>> = OnceLock::new();
    let required = std::env::var("PROTOACTOR_INTEROP").as_deref() == Ok("required");
    let r = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(cmd.to_string())
        .or_insert_with(|| build(cmd))
        .clone();
    match r {
        Ok(p) => Some(p),
        Err(e) if required => {
            panic!("interop tests are required (PROTOACTOR_INTEROP=required): {e}")
        }
        Err(e) => {
            // The real stderr: the harness hides the output of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!! SKIPPED: {what} not run: {e} (set PROTOACTOR_INTEROP=required to fail instead) !!!!!\n"
            );
            None
        }
    }
}

fn build(cmd: &str) -> Result<PathBuf, String> {
    match Command::new("go").arg("version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Err("the `go` tool is not installed".into()),
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(cmd);
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(format!("./cmd/{cmd}"))
        .current_dir(interop_dir())
        .status()
        .map_err(|e| format!("cannot run go build: {e}"))?;
    if !status.success() {
        return Err(format!("go build failed: {status}"));
    }
    Ok(out)
}
