//! Builds Go programs (the protoactor-go side of the mixed tests) once per test binary.
//!
//! Binaries go to `target/<profile>/testkit/go/`; each build writes a file of its own and
//! renames it into place, so test binaries building the same program at once do not trip
//! over each other (Go's build cache makes the second build cheap).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use crate::paths;
use crate::skip;

/// The variable that makes a missing `go` a failure (`PROTOACTOR_INTEROP=required`).
pub const INTEROP: &str = "PROTOACTOR_INTEROP";

/// True when the `go` tool runs.
pub fn go_installed() -> bool {
    Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `interop/cmd/<cmd>` built, or `None` after a loud SKIPPED line naming `what` when it
/// cannot be built (no `go`, or the build failed); panics instead under
/// `PROTOACTOR_INTEROP=required`.
pub fn go_program(cmd: &str, what: &str) -> Option<PathBuf> {
    go_binary(&paths::interop_dir(), &format!("./cmd/{cmd}"), cmd, what)
}

/// The Go package `package` of the module at `module` built as `name`, with the skip rule of
/// [`go_program`].
pub fn go_binary(module: &Path, package: &str, name: &str, what: &str) -> Option<PathBuf> {
    match build_cached(module, package, name) {
        Ok(p) => Some(p),
        Err(e) => skip::unavailable(INTEROP, what, &e),
    }
}

/// `go` itself, with the skip rule of [`go_program`]: `Some(())` when installed.
pub fn require_go(what: &str) -> Option<()> {
    if go_installed() {
        Some(())
    } else {
        skip::unavailable(INTEROP, what, "the `go` tool is not installed")
    }
}

/// Builds once per process (a failure is remembered too, so every test reports it).
fn build_cached(module: &Path, package: &str, name: &str) -> Result<PathBuf, String> {
    type Built = HashMap<(PathBuf, String), Result<PathBuf, String>>;
    static BUILT: OnceLock<Mutex<Built>> = OnceLock::new();
    BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry((module.to_path_buf(), package.to_string()))
        .or_insert_with(|| build(module, package, name))
        .clone()
}

fn build(module: &Path, package: &str, name: &str) -> Result<PathBuf, String> {
    if !go_installed() {
        return Err("the `go` tool is not installed".into());
    }
    let dir = paths::scratch_dir().join("go");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let out = dir.join(name);
    let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&tmp)
        .arg(package)
        .current_dir(module)
        .status()
        .map_err(|e| format!("cannot run go build: {e}"))?;
    if !status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("go build {package} failed: {status}"));
    }
    std::fs::rename(&tmp, &out).map_err(|e| format!("cannot move the Go binary: {e}"))?;
    Ok(out)
}
