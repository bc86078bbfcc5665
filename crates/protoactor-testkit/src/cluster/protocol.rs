//! The parent's side of gocluster's line protocol: start a member process, send it
//! commands, parse its answers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use crate::go;
use crate::process::{protocol_line, test_child, ChildProcess};

/// The cluster name of the automanaged multi-process tests.
pub const CLUSTER: &str = "interop";

/// Longest wait for any one answer of a member process.
pub const ANSWER: Duration = Duration::from_secs(90);

/// The name of the child test that runs a Rust member (see
/// [`rust_member_child_test!`](crate::rust_member_child_test)).
pub const RUST_MEMBER_CHILD: &str = "rust_member_child";

// How the parent tells the child test what to run (environment variables).
pub(crate) const CHILD_ENV: &str = "PROTOACTOR_CLUSTER_CHILD";
/// The cluster name a child member reads (set by the parent).
pub const ENV_CLUSTER: &str = "CLUSTER_MEMBER_CLUSTER";
/// The comma-separated kinds a child member hosts (set by the parent).
pub const ENV_KINDS: &str = "CLUSTER_MEMBER_KINDS";
pub(crate) const ENV_AUTO_PORT: &str = "CLUSTER_MEMBER_AUTO_PORT";
pub(crate) const ENV_PEERS: &str = "CLUSTER_MEMBER_PEERS";
pub(crate) const ENV_ETCD: &str = "CLUSTER_MEMBER_ETCD";
pub(crate) const ENV_CONSUL: &str = "CLUSTER_MEMBER_CONSUL";
/// `etcd`: a Rust child member on the etcd provider uses the strongly consistent etcd
/// identity lookup on the same endpoints (default: disthash).
pub const ENV_LOOKUP: &str = "CLUSTER_MEMBER_LOOKUP";
/// A file path: a Rust child member's grains log their lives there
/// ([`super::activations`]).
pub const ENV_ACTIVATION_LOG: &str = "CLUSTER_MEMBER_ACTIVATION_LOG";
/// The flag (followed by a file path) with which a Go member's grains log their lives there
/// in the same lines ([`super::activations`]; pass it to [`MemberProcess::go_with_args`]).
pub const GO_ACTIVATION_LOG_ARG: &str = "-activation-log";

/// The first words of protocol lines.
pub(crate) const TAGS: [&str; 8] = [
    "READY", "REPLY", "ERROR", "OWNER", "MEMBERS", "BLOCKED", "GOSSIP", "STATS",
];

/// The built Go member (`interop/cmd/gocluster`), or `None` (after a loud message) when Go
/// is not available; panics when `PROTOACTOR_INTEROP=required`.
pub fn go_member_binary() -> Option<PathBuf> {
    go::go_program("gocluster", "Go cluster interop test")
}

/// The provider a member process runs on.
#[derive(Debug, Clone)]
pub enum Provider {
    /// Automanaged: its health endpoint on `auto_port`, every member's health endpoint
    /// (`127.0.0.1:<auto port>`) in `peers`, polled every second.
    AutoManaged { auto_port: u16, peers: Vec<String> },
    /// etcd at `endpoints` (comma-separated).
    Etcd { endpoints: String },
    /// Consul with its agent at `agent` (`host:port`).
    Consul { agent: String },
}

/// A topology member as a process reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenMember {
    pub id: String,
    pub address: String,
    pub kinds: Vec<String>,
}

/// A grain's answer to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: String,
    pub identity: String,
    pub address: String,
    pub message: String,
}

/// Where each identity lives: identity -> (address, PID id).
pub type Owners = BTreeMap<String, (String, String)>;

/// The first few identities on which two owner maps differ (for short failure messages).
pub fn differences(a: &Owners, b: &Owners) -> Vec<String> {
    a.keys()
        .chain(b.keys())
        .filter(|id| a.get(*id) != b.get(*id))
        .take(5)
        .map(|id| format!("{id}: {:?} vs {:?}", a.get(id), b.get(id)))
        .collect()
}

/// Asserts that `other` resolves `ids` to exactly `expected`.
pub fn assert_same_owners(
    other: &mut MemberProcess,
    kind: &str,
    ids: &[String],
    expected: &Owners,
) {
    let got = other.owners(kind, ids);
    let diff = differences(expected, &got);
    assert!(diff.is_empty(), "{} disagrees: {diff:?}", other.label);
}

fn parse_reply(a: String) -> Result<Reply, String> {
    let mut f = a.splitn(5, ' ');
    match f.next() {
        Some("REPLY") => Ok(Reply {
            kind: f.next().unwrap_or("").into(),
            identity: f.next().unwrap_or("").into(),
            address: f.next().unwrap_or("").into(),
            message: f.next().unwrap_or("").into(),
        }),
        _ => Err(a),
    }
}

/// A member process; killed (SIGKILL) when dropped.
pub struct MemberProcess {
    /// The label given at start (in failure messages).
    pub label: String,
    /// Its remote address (from its `READY` line).
    pub address: String,
    /// Its member id (from its `READY` line).
    pub id: String,
    process: ChildProcess,
}

impl MemberProcess {
    fn start(label: &str, cmd: Command) -> MemberProcess {
        let mut process = ChildProcess::spawn(label, cmd, |l| protocol_line(l, &TAGS));
        let ready = process.next_line("READY", ANSWER);
        let f: Vec<&str> = ready.split_whitespace().collect();
        assert!(
            f.len() == 3 && f[0] == "READY",
            "{label}: bad READY line {ready:?}"
        );
        MemberProcess {
            label: label.to_string(),
            address: f[1].to_string(),
            id: f[2].to_string(),
            process,
        }
    }

    /// A protoactor-go member of `cluster` hosting `kinds` on `provider`, or `None` when Go
    /// is not available.
    pub fn go(
        label: &str,
        cluster: &str,
        provider: &Provider,
        kinds: &[&str],
    ) -> Option<MemberProcess> {
        Self::go_with_args(label, cluster, provider, kinds, &[])
    }

    /// As [`go`](Self::go), with more flags for the Go member (e.g. `-tls-cert`).
    pub fn go_with_args(
        label: &str,
        cluster: &str,
        provider: &Provider,
        kinds: &[&str],
        args: &[&str],
    ) -> Option<MemberProcess> {
        let mut cmd = Command::new(go_member_binary()?);
        cmd.args(["-name", cluster, "-host", "127.0.0.1", "-port", "0"])
            .args(["-kinds", &kinds.join(",")])
            .args(args);
        match provider {
            Provider::AutoManaged { auto_port, peers } => cmd
                .args(["-auto-port", &auto_port.to_string()])
                .args(["-peers", &peers.join(","), "-refresh", "1s"]),
            Provider::Etcd { endpoints } => cmd.args(["-provider", "etcd", "-etcd", endpoints]),
            Provider::Consul { agent } => cmd
                .args(["-provider", "consul"])
                .env("CONSUL_HTTP_ADDR", agent),
        };
        Some(Self::start(label, cmd))
    }

    /// A Rust member of `cluster` hosting `kinds` on `provider`: this test binary again,
    /// running only its [`RUST_MEMBER_CHILD`] test in child mode
    /// (declare it with [`rust_member_child_test!`](crate::rust_member_child_test)).
    pub fn rust(label: &str, cluster: &str, provider: &Provider, kinds: &[&str]) -> MemberProcess {
        Self::rust_with_env(label, cluster, provider, kinds, &[])
    }

    /// [`Self::rust`] with more environment variables for the child (e.g. [`ENV_LOOKUP`],
    /// [`ENV_ACTIVATION_LOG`]).
    pub fn rust_with_env(
        label: &str,
        cluster: &str,
        provider: &Provider,
        kinds: &[&str],
        env: &[(&str, &str)],
    ) -> MemberProcess {
        let mut cmd = test_child(RUST_MEMBER_CHILD);
        cmd.envs(env.iter().copied());
        cmd.env(CHILD_ENV, "1")
            .env(ENV_CLUSTER, cluster)
            .env(ENV_KINDS, kinds.join(","));
        match provider {
            Provider::AutoManaged { auto_port, peers } => cmd
                .env(ENV_AUTO_PORT, auto_port.to_string())
                .env(ENV_PEERS, peers.join(",")),
            Provider::Etcd { endpoints } => cmd.env(ENV_ETCD, endpoints),
            Provider::Consul { agent } => cmd.env(ENV_CONSUL, agent),
        };
        Self::start(label, cmd)
    }

    /// `program` as if in pod `pod`: its own mount and UTS namespaces (`unshare`, as root), a
    /// tmpfs on /run holding the service account files of `sa_dir` (`token`, `ca.crt`,
    /// `namespace`) at their in-cluster path, the host name `pod`, and
    /// `KUBERNETES_SERVICE_HOST/PORT` pointing at the API server on loopback. Nothing outside
    /// the process changes.
    pub fn in_pod_command(program: &Path, sa_dir: &Path, pod: &str, api_port: u16) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--uts",
            "sh",
            "-c",
            "set -e; mount -t tmpfs tmpfs /run; d=/run/secrets/kubernetes.io/serviceaccount; \
             mkdir -p $d; cp \"$1\"/token \"$1\"/ca.crt \"$1\"/namespace $d/; hostname \"$2\"; \
             shift 2; exec \"$@\"",
            "sh",
        ])
        .arg(sa_dir)
        .arg(pod)
        .arg(program)
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", api_port.to_string());
        cmd
    }

    /// A protoactor-go member of `cluster` on Go's Kubernetes provider with its in-cluster
    /// configuration, in pod `pod` (see [`Self::in_pod_command`]), or `None` when Go is not
    /// available.
    pub fn go_kubernetes(
        label: &str,
        cluster: &str,
        kinds: &[&str],
        sa_dir: &Path,
        pod: &str,
        api_port: u16,
    ) -> Option<MemberProcess> {
        let bin = go_member_binary()?;
        let mut cmd = Self::in_pod_command(&bin, sa_dir, pod, api_port);
        cmd.args(["-name", cluster, "-host", "127.0.0.1", "-port", "0"])
            .args(["-provider", "k8s", "-kinds", &kinds.join(",")]);
        Some(Self::start(label, cmd))
    }

    /// A Rust member of `cluster` in pod `pod` (see [`Self::in_pod_command`]): this test
    /// binary in child mode, running `child_test`, which reads [`ENV_CLUSTER`] and
    /// [`ENV_KINDS`], starts its member and calls
    /// [`serve_member`](super::child::serve_member).
    pub fn rust_in_pod(
        label: &str,
        child_test: &str,
        cluster: &str,
        kinds: &[&str],
        sa_dir: &Path,
        pod: &str,
        api_port: u16,
    ) -> MemberProcess {
        let exe = std::env::current_exe().expect("own path");
        let mut cmd = Self::in_pod_command(&exe, sa_dir, pod, api_port);
        cmd.args(test_child(child_test).get_args())
            .env(CHILD_ENV, "1")
            .env(ENV_CLUSTER, cluster)
            .env(ENV_KINDS, kinds.join(","));
        Self::start(label, cmd)
    }

    fn next_line(&mut self, what: &str) -> String {
        self.process.next_line(what, ANSWER)
    }

    /// Sends one command and returns its answer line.
    pub fn command(&mut self, line: &str) -> String {
        self.process.send_line(line);
        self.next_line(line.split_whitespace().next().unwrap_or(line))
    }

    /// `call`: a HelloRequest to grain `identity` of `kind` through the cluster.
    pub fn call(&mut self, kind: &str, identity: &str, name: &str) -> Result<Reply, String> {
        let a = self.command(&format!("call {kind} {identity} {name}"));
        parse_reply(a)
    }

    /// `gcall`: the HelloRequest inside `cluster.GrainRequest` with `method`, as generated
    /// grain clients send it; a `GrainErrorResponse` is `Err("ERROR grain error <reason>: ..")`.
    pub fn grain_call(
        &mut self,
        kind: &str,
        identity: &str,
        name: &str,
        method: i32,
    ) -> Result<Reply, String> {
        let a = self.command(&format!("gcall {kind} {identity} {name} {method}"));
        parse_reply(a)
    }

    /// `owner`: identity -> (address, PID id) of its activation, activating it if needed.
    pub fn owners(&mut self, kind: &str, ids: &[String]) -> Owners {
        let a = self.command(&format!("owner {kind} {}", ids.join(" ")));
        let mut f = a.split(' ');
        assert_eq!(f.next(), Some("OWNER"), "{}: {a}", self.label);
        f.filter(|s| !s.is_empty())
            .map(|e| {
                let (id, at) = e.split_once('=').expect("identity=address|pid");
                let (addr, pid) = at.split_once('|').unwrap_or((at, ""));
                (id.to_string(), (addr.to_string(), pid.to_string()))
            })
            .collect()
    }

    fn parse_members(&self, a: &str) -> Vec<SeenMember> {
        a.split(' ')
            .skip(1)
            .filter(|s| !s.is_empty() && *s != "timeout;")
            .filter_map(|e| {
                // Ids may contain '@' (etcd: `<cluster>@<system id>`); addresses never do.
                let (member, kinds) = e.split_once('[')?;
                let (id, addr) = member.rsplit_once('@')?;
                let kinds = kinds.trim_end_matches(']');
                Some(SeenMember {
                    id: id.to_string(),
                    address: addr.to_string(),
                    kinds: kinds
                        .split(',')
                        .filter(|k| !k.is_empty())
                        .map(String::from)
                        .collect(),
                })
            })
            .collect()
    }

    /// The current topology of this member.
    pub fn members(&mut self) -> Vec<SeenMember> {
        let a = self.command("members");
        assert!(a.starts_with("MEMBERS"), "{}: {a}", self.label);
        self.parse_members(&a)
    }

    /// Waits until every id in `ids` is in this member's topology; the topology then.
    pub fn await_members(&mut self, ids: &[&str], timeout: Duration) -> Vec<SeenMember> {
        let a = self.command(&format!(
            "await-members {} {}",
            timeout.as_millis(),
            ids.join(" ")
        ));
        assert!(
            a.starts_with("MEMBERS"),
            "{}: topology never contained {ids:?}: {a}",
            self.label
        );
        self.parse_members(&a)
    }

    /// Waits until no id in `ids` is in this member's topology.
    pub fn await_absent(&mut self, ids: &[&str], timeout: Duration) -> Vec<SeenMember> {
        let a = self.command(&format!(
            "await-absent {} {}",
            timeout.as_millis(),
            ids.join(" ")
        ));
        assert!(
            a.starts_with("MEMBERS"),
            "{}: {ids:?} never left the topology: {a}",
            self.label
        );
        self.parse_members(&a)
    }

    /// Waits until this member's gossip state has, for every `(id, min)`, a `key` value of
    /// member `id` with a sequence number of at least `min`; returns id -> sequence number.
    pub fn await_gossip(
        &mut self,
        key: &str,
        want: &[(&str, i64)],
        timeout: Duration,
    ) -> BTreeMap<String, i64> {
        let want: Vec<String> = want.iter().map(|(id, min)| format!("{id}={min}")).collect();
        let a = self.command(&format!(
            "await-gossip {} {key} {}",
            timeout.as_millis(),
            want.join(" ")
        ));
        assert!(
            a.starts_with("GOSSIP"),
            "{}: gossip {key} never reached {want:?}: {a}",
            self.label
        );
        a.split(' ')
            .skip(1)
            .filter_map(|e| {
                let (id, seq) = e.split_once('=')?;
                Some((id.to_string(), seq.parse().ok()?))
            })
            .collect()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// The operating system's process id.
    pub fn os_id(&self) -> u32 {
        self.process.id()
    }

    /// SIGSTOP: the process freezes (its timers, leases and sockets with it). Returns once
    /// the kernel reports it stopped (`/proc/<pid>/stat` state `T`), so nothing it does
    /// afterwards happened before this returned.
    pub fn freeze(&mut self) {
        self.signal("-STOP");
        let stat = format!("/proc/{}/stat", self.process.id());
        crate::wait::poll_until("the process stops", ANSWER, || {
            let s = std::fs::read_to_string(&stat).ok()?;
            // `pid (comm) state ...`; comm may hold spaces, the state follows its `)`.
            let state = s.rsplit_once(')')?.1.split_whitespace().next()?.to_string();
            (state == "T" || state == "t").then_some(())
        });
    }

    /// SIGCONT: a frozen process resumes.
    pub fn thaw(&mut self) {
        self.signal("-CONT");
    }

    fn signal(&mut self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.process.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "{}: kill {sig} failed", self.label);
    }

    /// Closes stdin (graceful shutdown) and waits (at most [`ANSWER`]) for the exit.
    pub fn stop(mut self) -> ExitStatus {
        self.process.stop(ANSWER)
    }
}

/// A Go member's `call` right after a member left its topology: Go's member list drops the
/// member before its disthash rendezvous does (both in one topology update), so a call in
/// between is routed to the dead member and times out ("context deadline exceeded"); the
/// next call resolves anew. Up to three tries, on that error only.
pub fn go_call_after_a_leave(
    go: &mut MemberProcess,
    kind: &str,
    identity: &str,
    name: &str,
) -> Reply {
    let mut last = String::new();
    for _ in 0..3 {
        match go.call(kind, identity, name) {
            Ok(r) => return r,
            Err(e) if e.contains("deadline exceeded") => last = e,
            Err(e) => panic!("{}: {kind}/{identity}: {e}", go.label),
        }
    }
    panic!("{}: {kind}/{identity}: {last}", go.label)
}
