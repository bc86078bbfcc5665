//! The services some suites need: etcd (the cluster's etcd provider) and PostgreSQL (the
//! persistence provider).
//!
//! The shared servers are named by environment variables (`PROTOACTOR_ETCD_ENDPOINTS`,
//! `PROTOACTOR_POSTGRES_URL`, set from `scripts/start-etcd.sh` / `scripts/start-postgres.sh`,
//! which reuse a running server or start one); without them a test is skipped loudly, or
//! fails under `PROTOACTOR_ETCD=required` / `PROTOACTOR_POSTGRES=required`. A test that must
//! stop and restart its server starts a private one with [`ScriptServer`].

use std::path::PathBuf;
use std::process::Command;

use crate::paths;
use crate::ports;
use crate::skip;

/// The shared etcd's client endpoints (comma-separated), or `None` after a loud SKIPPED
/// line; panics under `PROTOACTOR_ETCD=required`.
pub fn etcd_endpoints() -> Option<String> {
    match std::env::var("PROTOACTOR_ETCD_ENDPOINTS") {
        Ok(e) if !e.trim().is_empty() => Some(e),
        _ => skip::unavailable(
            "PROTOACTOR_ETCD",
            "etcd test",
            "PROTOACTOR_ETCD_ENDPOINTS is not set \
             (export PROTOACTOR_ETCD_ENDPOINTS=\"$(scripts/start-etcd.sh)\")",
        ),
    }
}

/// The shared PostgreSQL server's URL, or `None` after a loud SKIPPED line naming `what`;
/// panics under `PROTOACTOR_POSTGRES=required`.
pub fn postgres_url(what: &str) -> Option<String> {
    match std::env::var("PROTOACTOR_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => skip::unavailable(
            "PROTOACTOR_POSTGRES",
            what,
            "PROTOACTOR_POSTGRES_URL is not set \
             (export PROTOACTOR_POSTGRES_URL=\"$(scripts/start-postgres.sh)\")",
        ),
    }
}

/// A private server run by one of the `scripts/start-*.sh` scripts on its own port and data
/// directory; stopped and its directory removed when dropped.
pub struct ScriptServer {
    script: PathBuf,
    env: Vec<(String, String)>,
    /// The server's directory (data, logs, pid file).
    pub dir: PathBuf,
    /// The server's (client) port.
    pub port: u16,
}

impl ScriptServer {
    /// A private etcd (`scripts/start-etcd.sh` on two free ports), started; returns it and
    /// its endpoint.
    pub fn etcd() -> (ScriptServer, String) {
        let (s, endpoint) = Self::etcd_unstarted();
        assert_eq!(s.start(), endpoint);
        (s, endpoint)
    }

    /// A private etcd on two free ports, not started yet (nothing listens on its endpoint
    /// until [`ScriptServer::start`]); returns it and its endpoint.
    pub fn etcd_unstarted() -> (ScriptServer, String) {
        let port = ports::free_port_pair();
        let dir = paths::scratch_dir().join(format!("etcd-{}-{port}", std::process::id()));
        let s = ScriptServer {
            script: paths::script("start-etcd.sh"),
            env: vec![
                ("PROTOACTOR_ETCD_PORT".into(), port.to_string()),
                ("PROTOACTOR_ETCD_DIR".into(), dir.display().to_string()),
            ],
            dir,
            port,
        };
        (s, format!("http://127.0.0.1:{port}"))
    }

    /// A private PostgreSQL (`scripts/start-postgres.sh` on a free port), started; returns
    /// it and its URL.
    pub fn postgres() -> (ScriptServer, String) {
        let port = ports::free_port();
        let dir = paths::scratch_dir().join(format!("postgres-{}-{port}", std::process::id()));
        let s = ScriptServer {
            script: paths::script("start-postgres.sh"),
            env: vec![
                ("PROTOACTOR_PG_PORT".into(), port.to_string()),
                ("PROTOACTOR_PG_DIR".into(), dir.display().to_string()),
            ],
            dir,
            port,
        };
        let url = s.start();
        (s, url)
    }

    fn run(&self, arg: Option<&str>) -> String {
        let mut cmd = Command::new("bash");
        cmd.arg(&self.script).envs(self.env.iter().cloned());
        if let Some(a) = arg {
            cmd.arg(a);
        }
        let out = cmd.output().expect("the service script runs");
        assert!(
            out.status.success(),
            "{} {arg:?} failed: {}",
            self.script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Starts the server (or finds it running); its endpoint / URL.
    pub fn start(&self) -> String {
        self.run(None)
    }

    /// Stops the server (its data stays until drop).
    pub fn stop(&self) {
        self.run(Some("stop"));
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .envs(self.env.iter().cloned())
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
