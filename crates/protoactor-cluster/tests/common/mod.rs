//! Cluster members in their own processes, driven over one line protocol: protoactor-go
//! members (`interop/cmd/gocluster`, protocol in its main.go) and Rust members (this test
//! binary re-run as a child, see [`run_rust_member_if_child`]), both on the automanaged
//! provider. Every wait is for an answer line; nothing sleeps a fixed time.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use protoactor::prelude::*;
use protoactor_cluster::automanaged::{AutoManagedConfig, AutoManagedProvider};
#[cfg(feature = "consul")]
use protoactor_cluster::consul::{ConsulConfig, ConsulProvider};
#[cfg(feature = "etcd")]
use protoactor_cluster::etcd::{EtcdConfig, EtcdProvider};
use protoactor_cluster::gossip::Gossiper;
use protoactor_cluster::{
    CallOptions, Cluster, ClusterConfig, ClusterError, ClusterIdentity, DistHashIdentityLookup,
    GrainContext, GrainErrorResponse, GrainRequest, Kind,
};
use protoactor_remote::{Remote, RemoteConfig, Serialization, WireVariant};

/// `clustertest.HelloRequest` (interop/proto/clustertest.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloRequest {
    #[prost(string, tag = "1")]
    pub name: String,
}

impl prost::Name for HelloRequest {
    const NAME: &'static str = "HelloRequest";
    const PACKAGE: &'static str = "clustertest";
}

/// `clustertest.HelloResponse` (interop/proto/clustertest.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloResponse {
    #[prost(string, tag = "1")]
    pub message: String,
    #[prost(string, tag = "2")]
    pub kind: String,
    #[prost(string, tag = "3")]
    pub identity: String,
    #[prost(string, tag = "4")]
    pub address: String,
}

impl prost::Name for HelloResponse {
    const NAME: &'static str = "HelloResponse";
    const PACKAGE: &'static str = "clustertest";
}

/// The cluster name of these tests.
pub const CLUSTER: &str = "interop";

/// Longest wait for any one answer of a member process.
pub const ANSWER: Duration = Duration::from_secs(90);

/// A free loopback port for a listener a member binds later. Taken below the kernel's
/// ephemeral range (32768 and up on Linux), so that no outgoing connection of the busy
/// machine takes it between this check and the member's bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Different test binaries run at once: start each at a different point.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = (std::process::id() % 10_000) as u16;
    for _ in 0..12_000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(7))) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

mod go_build;

/// The built Go member, or `None` (after a loud message) when Go is not available; panics
/// when `PROTOACTOR_INTEROP=required`.
pub fn go_member_binary() -> Option<PathBuf> {
    go_build::go_program("gocluster", "Go cluster interop test")
}

/// How to start one member.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    pub label: String,
    pub auto_port: u16,
    /// Every member's health endpoint, `127.0.0.1:<auto port>`.
    pub peers: Vec<String>,
    pub kinds: Vec<String>,
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
    pub label: String,
    pub address: String,
    pub id: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// The last lines of the process's stderr, for failure messages.
    stderr_tail: Arc<parking_lot::Mutex<std::collections::VecDeque<String>>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

const TAGS: [&str; 7] = [
    "READY", "REPLY", "ERROR", "OWNER", "MEMBERS", "BLOCKED", "GOSSIP",
];

/// The protocol line in `line`, if any: Rust children prefix theirs with `@@ ` (the test
/// harness may print on the same line); Go members print them bare.
fn protocol_line(line: &str) -> Option<String> {
    let l = match line.find("@@ ") {
        Some(i) => &line[i + 3..],
        None => line,
    };
    let tag = l.split_whitespace().next()?;
    TAGS.contains(&tag).then(|| l.trim_end().to_string())
}

impl MemberProcess {
    fn start(label: &str, mut cmd: Command) -> MemberProcess {
        let verbose = std::env::var_os("PROTOACTOR_INTEROP_VERBOSE").is_some();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("member process starts");
        let stderr_tail = Arc::new(parking_lot::Mutex::new(std::collections::VecDeque::new()));
        let (tail, err, l) = (
            stderr_tail.clone(),
            child.stderr.take().unwrap(),
            label.to_string(),
        );
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if verbose {
                    eprintln!("[{l} stderr] {line}");
                }
                let mut t = tail.lock();
                if t.len() == 40 {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let l = label.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if verbose {
                    eprintln!("[{l}] {line}");
                }
                if let Some(p) = protocol_line(&line) {
                    if tx.send(p).is_err() {
                        break;
                    }
                }
            }
        });
        let mut m = MemberProcess {
            label: label.to_string(),
            address: String::new(),
            id: String::new(),
            child,
            stdin: None,
            lines: rx,
            stderr_tail,
            stderr_reader: Some(stderr_reader),
        };
        let ready = m.next_line("READY");
        let f: Vec<&str> = ready.split_whitespace().collect();
        assert!(
            f.len() == 3 && f[0] == "READY",
            "{label}: bad READY line {ready:?}"
        );
        m.address = f[1].to_string();
        m.id = f[2].to_string();
        m.stdin = m.child.stdin.take();
        m
    }

    /// A protoactor-go member, or `None` when Go is not available.
    pub fn go(spec: &MemberSpec) -> Option<MemberProcess> {
        let bin = go_member_binary()?;
        let mut cmd = Command::new(bin);
        cmd.args([
            "-name",
            CLUSTER,
            "-host",
            "127.0.0.1",
            "-port",
            "0",
            "-auto-port",
            &spec.auto_port.to_string(),
            "-peers",
            &spec.peers.join(","),
            "-kinds",
            &spec.kinds.join(","),
            "-refresh",
            "1s",
        ]);
        Some(Self::start(&spec.label, cmd))
    }

    /// A protoactor-go member of `cluster` on Go's etcd provider, or `None` when Go is not
    /// available.
    pub fn go_etcd(
        label: &str,
        cluster: &str,
        endpoints: &str,
        kinds: &[&str],
    ) -> Option<MemberProcess> {
        let bin = go_member_binary()?;
        let mut cmd = Command::new(bin);
        cmd.args([
            "-name",
            cluster,
            "-host",
            "127.0.0.1",
            "-port",
            "0",
            "-provider",
            "etcd",
            "-etcd",
            endpoints,
            "-kinds",
            &kinds.join(","),
        ]);
        Some(Self::start(label, cmd))
    }

    /// A protoactor-go member of `cluster` on Go's consul provider with its agent at
    /// `agent` (`host:port`), or `None` when Go is not available.
    pub fn go_consul(
        label: &str,
        cluster: &str,
        agent: &str,
        kinds: &[&str],
    ) -> Option<MemberProcess> {
        let bin = go_member_binary()?;
        let mut cmd = Command::new(bin);
        cmd.args([
            "-name",
            cluster,
            "-host",
            "127.0.0.1",
            "-port",
            "0",
            "-provider",
            "consul",
            "-kinds",
            &kinds.join(","),
        ])
        .env("CONSUL_HTTP_ADDR", agent);
        Some(Self::start(label, cmd))
    }

    /// A Rust member of `cluster` on the consul provider (this test binary in child mode).
    pub fn rust_consul(
        label: &str,
        child_test: &str,
        cluster: &str,
        agent: &str,
        kinds: &[&str],
    ) -> MemberProcess {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", child_test, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .env("CLUSTER_MEMBER_CONSUL", agent)
            .env("CLUSTER_MEMBER_CLUSTER", cluster)
            .env("CLUSTER_MEMBER_KINDS", kinds.join(","));
        Self::start(label, cmd)
    }

    /// A Rust member of `cluster` on the etcd provider (this test binary in child mode).
    pub fn rust_etcd(
        label: &str,
        child_test: &str,
        cluster: &str,
        endpoints: &str,
        kinds: &[&str],
    ) -> MemberProcess {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", child_test, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .env("CLUSTER_MEMBER_ETCD", endpoints)
            .env("CLUSTER_MEMBER_CLUSTER", cluster)
            .env("CLUSTER_MEMBER_KINDS", kinds.join(","));
        Self::start(label, cmd)
    }

    /// A Rust member: this test binary again, running only `child_test` in child mode.
    pub fn rust(spec: &MemberSpec, child_test: &str) -> MemberProcess {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", child_test, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .env("CLUSTER_MEMBER_AUTO_PORT", spec.auto_port.to_string())
            .env("CLUSTER_MEMBER_PEERS", spec.peers.join(","))
            .env("CLUSTER_MEMBER_KINDS", spec.kinds.join(","));
        Self::start(&spec.label, cmd)
    }

    fn next_line(&mut self, what: &str) -> String {
        match self.lines.recv_timeout(ANSWER) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "{}: no answer to {what:?} within {ANSWER:?}; its stderr ends with:\n{}",
                    self.label,
                    self.stderr_tail()
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait();
                // All of stderr, up to the end of the process.
                if let Some(r) = self.stderr_reader.take() {
                    let _ = r.join();
                }
                panic!(
                    "{}: the process ended while waiting for {what:?} ({status:?}); its stderr ends with:\n{}",
                    self.label,
                    self.stderr_tail()
                )
            }
        }
    }

    fn stderr_tail(&self) -> String {
        self.stderr_tail
            .lock()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Sends one command and returns its answer line.
    pub fn command(&mut self, line: &str) -> String {
        let stdin = self.stdin.as_mut().expect("member is running");
        writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: cannot send {line:?}: {e}", self.label));
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
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes stdin (graceful shutdown) and waits for the exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.stdin.take();
        self.child.wait().expect("member exits")
    }
}

impl Drop for MemberProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Go member's `call` right after a member left its topology: Go's member list drops the
/// member before its disthash rendezvous does (both in one topology update, in
/// protoactor-go's `cluster/member_list.go`), so a call in between is routed to the dead member and times out ("context
/// deadline exceeded"); the next call resolves anew. Up to three tries, on that error only.
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

// ------------------------------------------------------------------ the Rust member child

const CHILD_ENV: &str = "PROTOACTOR_CLUSTER_CHILD";

/// The test kinds' grain: answers HelloRequest, directly or as GrainRequest method 0, with
/// its kind, identity and the member's address (as the Go members' grain does).
pub fn hello_props() -> Props {
    Props::from_func(|ctx| {
        let Some(ci) = ctx.cluster_identity() else {
            return;
        };
        let address = ctx.system().address();
        let hello = |req: &HelloRequest| HelloResponse {
            message: format!("hello {} from {}/{}", req.name, ci.kind, ci.identity),
            kind: ci.kind.clone(),
            identity: ci.identity.clone(),
            address: address.clone(),
        };
        if let Some(req) = ctx.message_as::<HelloRequest>() {
            let r = hello(req);
            ctx.respond(r);
        } else if let Some(g) = ctx.message_as::<GrainRequest>() {
            let reply = if g.method_index != 0 {
                Err(GrainErrorResponse::new(
                    "UNIMPLEMENTED",
                    format!("unknown method index {}", g.method_index),
                ))
            } else {
                g.decode_input::<HelloRequest>().map(|r| hello(&r))
            };
            match reply {
                Ok(r) => ctx.respond(r),
                Err(e) => ctx.respond(e),
            }
        }
    })
}

/// The registry of a test member: the cluster registers its own types; these are the
/// grain messages, the same on the Go side.
pub fn serialization() -> Serialization {
    let s = Serialization::new();
    s.register::<HelloRequest>();
    s.register::<HelloResponse>();
    s
}

/// Starts a Rust member on automanaged (Legacy2024 wire, as the Go module speaks).
pub fn start_rust_member(
    auto_port: u16,
    peers: Vec<String>,
    kinds: &[String],
) -> (ActorSystem, Arc<Remote>, Cluster) {
    let system = ActorSystem::new();
    let remote = Remote::start(
        &system,
        RemoteConfig::new("127.0.0.1", 0)
            .with_wire_variant(WireVariant::Legacy2024)
            .with_serialization(serialization()),
    )
    .expect("remote starts");
    let provider = AutoManagedProvider::new(
        AutoManagedConfig::new(auto_port, peers)
            .with_bind_host("127.0.0.1")
            .with_refresh(Duration::from_secs(1)),
    );
    let config = ClusterConfig::new(CLUSTER, provider, DistHashIdentityLookup::new())
        .with_kinds(kinds.iter().map(|k| Kind::new(k.as_str(), hello_props())));
    let cluster = Cluster::start_member(&system, &remote, config).expect("cluster starts");
    (system, remote, cluster)
}

/// Starts a Rust member of `cluster` on the etcd provider (Legacy2024 wire).
#[cfg(feature = "etcd")]
pub fn start_rust_member_etcd(
    cluster: &str,
    endpoints: &str,
    kinds: &[String],
) -> (ActorSystem, Arc<Remote>, Cluster) {
    let system = ActorSystem::new();
    let remote = Remote::start(
        &system,
        RemoteConfig::new("127.0.0.1", 0)
            .with_wire_variant(WireVariant::Legacy2024)
            .with_serialization(serialization()),
    )
    .expect("remote starts");
    let provider = EtcdProvider::new(
        EtcdConfig::new(endpoints.split(',').filter(|e| !e.is_empty()))
            .with_retry_interval(Duration::from_millis(200)),
    );
    let config = ClusterConfig::new(cluster, provider, DistHashIdentityLookup::new())
        .with_kinds(kinds.iter().map(|k| Kind::new(k.as_str(), hello_props())));
    let cluster = Cluster::start_member(&system, &remote, config).expect("cluster starts");
    (system, remote, cluster)
}

/// Starts a Rust member of `cluster` on the consul provider (Legacy2024 wire).
#[cfg(feature = "consul")]
pub fn start_rust_member_consul(
    cluster: &str,
    agent: &str,
    kinds: &[String],
) -> (ActorSystem, Arc<Remote>, Cluster) {
    let system = ActorSystem::new();
    let remote = Remote::start(
        &system,
        RemoteConfig::new("127.0.0.1", 0)
            .with_wire_variant(WireVariant::Legacy2024)
            .with_serialization(serialization()),
    )
    .expect("remote starts");
    let provider = ConsulProvider::new(ConsulConfig::new(agent));
    let config = ClusterConfig::new(cluster, provider, DistHashIdentityLookup::new())
        .with_kinds(kinds.iter().map(|k| Kind::new(k.as_str(), hello_props())));
    let cluster = Cluster::start_member(&system, &remote, config).expect("cluster starts");
    (system, remote, cluster)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\n@@ {line}");
    let _ = out.flush();
}

fn members_line(cluster: &Cluster) -> String {
    let mut s = String::from("MEMBERS");
    for m in cluster.member_list().members() {
        let mut kinds = m.kinds.clone();
        kinds.sort();
        s.push_str(&format!(" {}@{}[{}]", m.id, m.address(), kinds.join(",")));
    }
    s
}

fn gossip_seqs(cluster: &Cluster, key: &str) -> BTreeMap<String, i64> {
    cluster
        .system()
        .extension::<Gossiper>()
        .map(|g| {
            g.get_state(key)
                .into_iter()
                .map(|(id, v)| (id, v.sequence_number))
                .collect()
        })
        .unwrap_or_default()
}

fn gossip_line(cluster: &Cluster, key: &str) -> String {
    let mut s = String::from("GOSSIP");
    for (id, seq) in gossip_seqs(cluster, key) {
        s.push_str(&format!(" {id}={seq}"));
    }
    s
}

/// A call's answer in the protocol's words (the same as gocluster's).
fn reply_line(r: Result<HelloResponse, ClusterError>) -> String {
    match r {
        Ok(r) => format!(
            "REPLY {} {} {} {}",
            r.kind, r.identity, r.address, r.message
        ),
        Err(ClusterError::Grain(e)) => format!(
            "ERROR grain error {}: {}",
            e.reason,
            e.message.replace('\n', " ")
        ),
        Err(e) => format!("ERROR {}", e.to_string().replace('\n', " ")),
    }
}

fn handle(cluster: &Cluster, line: &str) -> String {
    let f: Vec<&str> = line.split_whitespace().collect();
    let opts = CallOptions::default();
    match f.as_slice() {
        ["call", kind, identity, name] => {
            let req = HelloRequest {
                name: name.to_string(),
            };
            reply_line(
                cluster.request_blocking_as::<HelloResponse, _>(*identity, *kind, req, &opts),
            )
        }
        ["gcall", kind, identity, name, method @ ..] if method.len() <= 1 => {
            let Ok(method) = method.first().map_or(Ok(0), |m| m.parse::<i32>()) else {
                return format!("ERROR bad method index {method:?}");
            };
            let req = GrainRequest::new(
                method,
                &HelloRequest {
                    name: name.to_string(),
                },
            );
            reply_line(
                cluster.request_blocking_as::<HelloResponse, _>(*identity, *kind, req, &opts),
            )
        }
        ["owner", kind, ids @ ..] => {
            let futs: Vec<_> = ids
                .iter()
                .map(|id| cluster.get(&ClusterIdentity::new(*id, *kind)))
                .collect();
            let rt = cluster.system().runtime().clone();
            let results = rt.block_on(async move {
                let mut set = tokio::task::JoinSet::new();
                for (i, f) in futs.into_iter().enumerate() {
                    set.spawn(async move { (i, f.await) });
                }
                let mut out = vec![None; set.len()];
                while let Some(Ok((i, r))) = set.join_next().await {
                    out[i] = r.ok();
                }
                out
            });
            let mut s = String::from("OWNER");
            for (id, pid) in ids.iter().zip(results) {
                match pid {
                    Some(p) => s.push_str(&format!(" {id}={}|{}", p.address(), p.id())),
                    None => s.push_str(&format!(" {id}=-")),
                }
            }
            s
        }
        ["members"] => members_line(cluster),
        [cmd @ ("await-members" | "await-absent"), ms, ids @ ..] => {
            let Ok(ms) = ms.parse::<u64>() else {
                return format!("ERROR bad timeout {ms}");
            };
            let present = *cmd == "await-members";
            let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
            let ml = cluster.member_list().clone();
            let ok = cluster.system().runtime().block_on(async move {
                ml.wait_until(Duration::from_millis(ms), |t| {
                    ids.iter().all(|id| t.member(id).is_some() == present)
                })
                .await
            });
            if ok {
                members_line(cluster)
            } else {
                format!("ERROR timeout; {}", members_line(cluster))
            }
        }
        ["blocked"] => format!("BLOCKED {}", cluster.member_list().blocked().join(" ")),
        ["gossip", key] => gossip_line(cluster, key),
        ["await-gossip", ms, key, want @ ..] => {
            let Ok(ms) = ms.parse::<u64>() else {
                return format!("ERROR bad timeout {ms}");
            };
            let mut mins = Vec::new();
            for w in want {
                match w
                    .split_once('=')
                    .and_then(|(id, n)| Some((id, n.parse::<i64>().ok()?)))
                {
                    Some(x) => mins.push(x),
                    None => return format!("ERROR bad entry {w} (want id=seq)"),
                }
            }
            let deadline = std::time::Instant::now() + Duration::from_millis(ms);
            loop {
                let seqs = gossip_seqs(cluster, key);
                if mins
                    .iter()
                    .all(|(id, min)| seqs.get(*id).is_some_and(|s| s >= min))
                {
                    return gossip_line(cluster, key);
                }
                if std::time::Instant::now() > deadline {
                    return format!("ERROR timeout; {}", gossip_line(cluster, key));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        _ => format!("ERROR unknown command {line}"),
    }
}

/// In a child process (started by [`MemberProcess::rust`]), runs a Rust member driven over
/// stdin/stdout with the gocluster protocol until stdin closes, then leaves gracefully.
/// Returns false in the parent test process.
pub fn run_rust_member_if_child() -> bool {
    if std::env::var_os(CHILD_ENV).is_none() {
        return false;
    }
    if std::env::var_os("PROTOACTOR_INTEROP_VERBOSE").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_writer(std::io::stderr)
            .try_init();
    }
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let split = |s: String| -> Vec<String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    };
    // The etcd and consul members exist only in builds with those features (their tests
    // require them).
    let started: Option<(ActorSystem, Arc<Remote>, Cluster)> = None;
    #[cfg(feature = "consul")]
    let started = started.or_else(|| {
        std::env::var_os("CLUSTER_MEMBER_CONSUL").map(|_| {
            start_rust_member_consul(
                &var("CLUSTER_MEMBER_CLUSTER"),
                &var("CLUSTER_MEMBER_CONSUL"),
                &split(var("CLUSTER_MEMBER_KINDS")),
            )
        })
    });
    #[cfg(feature = "etcd")]
    let started = started.or_else(|| {
        std::env::var_os("CLUSTER_MEMBER_ETCD").map(|_| {
            start_rust_member_etcd(
                &var("CLUSTER_MEMBER_CLUSTER"),
                &var("CLUSTER_MEMBER_ETCD"),
                &split(var("CLUSTER_MEMBER_KINDS")),
            )
        })
    });
    // Without the etcd and consul features `started` is a literal None.
    #[allow(clippy::unnecessary_literal_unwrap)]
    let (system, remote, cluster) = started.unwrap_or_else(|| {
        let auto_port: u16 = var("CLUSTER_MEMBER_AUTO_PORT").parse().expect("auto port");
        start_rust_member(
            auto_port,
            split(var("CLUSTER_MEMBER_PEERS")),
            &split(var("CLUSTER_MEMBER_KINDS")),
        )
    });
    say(&format!("READY {} {}", remote.address(), system.id()));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        say(&handle(&cluster, &line));
    }
    cluster.shutdown_blocking(true);
    remote.shutdown();
    system.shutdown();
    true
}
