//! Where things are: the workspace, the Go modules, the binaries cargo builds.

use std::path::PathBuf;

/// The workspace root (this crate is `crates/protoactor-testkit`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `interop/` Go module (protoactor-go programs the mixed tests run).
pub fn interop_dir() -> PathBuf {
    workspace_root().join("interop")
}

/// A script under `scripts/`.
pub fn script(name: &str) -> PathBuf {
    workspace_root().join("scripts").join(name)
}

/// `target/<profile>` of the running test binary (which lives in `target/<profile>/deps`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The example binary `name` that the same `cargo test` run built
/// (`target/<profile>/examples/<name>`); panics, naming `package`, when it is missing.
pub fn example_binary(name: &str, package: &str) -> PathBuf {
    let path = profile_dir()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "example binary {} is missing: `cargo test` builds examples unless test targets are \
         filtered; run `cargo build -p {package} --examples` first",
        path.display()
    );
    path
}

/// A directory for files the test suites build or keep (`target/<profile>/testkit`).
pub fn scratch_dir() -> PathBuf {
    let d = profile_dir().join("testkit");
    std::fs::create_dir_all(&d).expect("create the testkit directory");
    d
}
