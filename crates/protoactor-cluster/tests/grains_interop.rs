//! Typed grains against protoactor-go's own generator: interop/grainstest holds what
//! `protoc-gen-go-grain` (from the pinned protoactor-go module, interop/gen.sh) generates from
//! tests/protos/grainstest.proto, the file protoactor-cluster-build compiles for the Rust side.
//!
//! * `rust_and_go_generators_agree`: the kind names and method indexes of the two generated
//!   files are the same (reads the committed Go file; needs no Go).
//! * `go_and_rust_generated_grains_call_each_other`: a mixed cluster (automanaged, disthash)
//!   of this process's Rust member and a Go member process (interop/cmd/gograins, driven over
//!   stdin/stdout). Go's generated clients call Rust generated grains, Rust's generated
//!   clients call Go generated grains: successes and every error path. Without `go` it
//!   prints a loud SKIPPED line and passes, unless `PROTOACTOR_INTEROP=required`.
//! * `go_calls_a_rust_persistent_grain`: Go's generated `CounterService` client calls the
//!   persistent form of the kind on a Rust member: its adds are journaled, a re-activation
//!   recovers them, and a stale activation's answer reaches Go as a `GrainErrorResponse`
//!   with `stale_activation`.

mod grain_impls;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use grain_impls::grainstest::*;
#[cfg(feature = "persistence")]
use grain_impls::PersistentCounter;
use grain_impls::{CounterGrain, GreeterGrain};
use protoactor::prelude::*;
use protoactor_cluster::automanaged::{AutoManagedConfig, AutoManagedProvider};
use protoactor_cluster::{
    CallOptions, Cluster, ClusterConfig, DistHashIdentityLookup, GrainError, GrainRequest,
};
use protoactor_remote::{Remote, RemoteConfig, WireVariant};
use serde_json::Value;

/// Longest wait for one answer of the Go process or one topology change.
const WAIT: Duration = Duration::from_secs(60);

use protoactor_testkit::go;
use protoactor_testkit::paths::interop_dir;
use protoactor_testkit::ports::free_port;
use protoactor_testkit::process::ChildProcess;

/// `(service, method)` → method index, from generated code.
type Indexes = BTreeMap<(String, String), i32>;

/// From protoc-gen-go-grain's file: each `func (g *<S>GrainClient) <M>(` and the
/// `MethodIndex: <n>` it sends.
fn go_indexes(go: &str) -> Indexes {
    let mut out = Indexes::new();
    let mut current: Option<(String, String)> = None;
    for line in go.lines() {
        if let Some(rest) = line.strip_prefix("func (g *") {
            let (service, rest) = rest.split_once("GrainClient) ").unwrap();
            let method = rest.split('(').next().unwrap();
            current =
                (!method.ends_with("Future")).then(|| (service.to_string(), method.to_lowercase()));
        } else if let (Some(key), Some(i)) = (&current, line.find("MethodIndex: ")) {
            let n = line[i + 13..].split(',').next().unwrap().parse().unwrap();
            out.insert(key.clone(), n);
            current = None;
        }
    }
    out
}

/// From protoactor-cluster-build's file: `<n> => { ...handle...(.. grain.<m>(` in each
/// `fn <service>_dispatch`.
fn rust_indexes(rust: &str, services: &[(&str, &str)]) -> Indexes {
    dispatch_indexes(rust, services, "_dispatch<", "::grain::handle", "grain.")
}

#[cfg(feature = "persistence")]
/// The same from each `fn <service>_persistent_dispatch` (`<n> => persistent::handle(..
/// <T as <S>Persistent>::<m>(`).
fn rust_persistent_indexes(rust: &str, services: &[(&str, &str)]) -> Indexes {
    dispatch_indexes(
        rust,
        services,
        "_persistent_dispatch<",
        "::persistent::handle",
        "Persistent>::",
    )
}

fn dispatch_indexes(
    rust: &str,
    services: &[(&str, &str)],
    dispatch: &str,
    handle: &str,
    marker: &str,
) -> Indexes {
    let code: String = rust.split_whitespace().collect();
    let mut out = Indexes::new();
    for (snake, go_name) in services {
        let start = code.find(&format!("fn{snake}{dispatch}")).unwrap();
        let body = &code[start..];
        let body = &body[..body.find("other=>").unwrap()];
        let mut rest = body;
        let arm = format!("=>{{::protoactor_cluster{handle}");
        let arm_plain = format!("=>::protoactor_cluster{handle}");
        while let Some(i) = rest.find(&arm).or_else(|| rest.find(&arm_plain)) {
            let digits: String = rest[..i]
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let after = &rest[i..];
            let method = after
                .split(marker)
                .nth(1)
                .unwrap()
                .split('(')
                .next()
                .unwrap();
            out.insert(
                (go_name.to_string(), method.replace('_', "")),
                digits.parse().unwrap(),
            );
            rest = &after[1..];
        }
    }
    out
}

#[test]
fn rust_and_go_generators_agree() {
    let go = std::fs::read_to_string(interop_dir().join("grainstest/grainstest_grain.pb.go"))
        .expect("the committed Go generated file");
    let rust = include_str!(concat!(env!("OUT_DIR"), "/grainstest.rs"));
    for kind in [GREETER_KIND, COUNTER_SERVICE_KIND] {
        assert!(
            go.contains(&format!("cluster.NewKind(\"{kind}\", props)")),
            "Go names no kind {kind}"
        );
    }
    let go = go_indexes(&go);
    let rust = rust_indexes(
        rust,
        &[
            ("greeter", "Greeter"),
            ("counter_service", "CounterService"),
        ],
    );
    assert_eq!(go.len(), 6, "{go:?}");
    assert_eq!(rust, go);
    // The streaming rpc's slot (1) is taken by neither.
    assert_eq!(go[&("Greeter".to_string(), "fail".to_string())], 2);
    // The persistent form of a service keeps the kind's indexes (Go's clients call it).
    #[cfg(feature = "persistence")]
    check_persistent_indexes(go);
}

#[cfg(feature = "persistence")]
fn check_persistent_indexes(go: Indexes) {
    let persistent = rust_persistent_indexes(
        include_str!(concat!(env!("OUT_DIR"), "/grainstest.rs")),
        &[("counter_service", "CounterService")],
    );
    let go_counter: Indexes = go
        .into_iter()
        .filter(|((service, _), _)| service == "CounterService")
        .collect();
    assert_eq!(persistent.len(), 2, "{persistent:?}");
    assert_eq!(persistent, go_counter);
}

// ------------------------------------------------------------------ the mixed cluster

fn go_binary() -> Option<PathBuf> {
    go::go_program("gograins", "Go typed-grain interop test")
}

/// The Go member process (`READY <address> <id>`, then one answer line a command); killed
/// when dropped.
struct GoMember {
    address: String,
    id: String,
    process: ChildProcess,
}

impl GoMember {
    fn start(bin: &PathBuf, auto_port: u16, peers: &[String]) -> GoMember {
        let mut cmd = Command::new(bin);
        cmd.args(["-name", "grains", "-auto-port", &auto_port.to_string()])
            .args(["-peers", &peers.join(",")]);
        let mut process = ChildProcess::spawn("Go member", cmd, |line| {
            let tag = line.split(' ').next().unwrap_or("");
            ["READY", "OK", "ERR", "ERROR", "MEMBERS"]
                .contains(&tag)
                .then(|| line.to_string())
        });
        let ready = process.next_line("READY", WAIT);
        let f: Vec<&str> = ready.split(' ').collect();
        assert_eq!(f.len(), 3, "bad READY line {ready:?}");
        GoMember {
            address: f[1].to_string(),
            id: f[2].to_string(),
            process,
        }
    }

    fn command(&mut self, line: &str) -> String {
        self.process.send_line(line);
        self.process.next_line(line, WAIT)
    }

    /// A call's answer: `Ok(json)` or `Err(json error)`.
    fn call(&mut self, line: &str) -> Result<Value, Value> {
        let a = self.command(line);
        let (tag, json) = a.split_once(' ').unwrap_or((&a, ""));
        let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{line}: {a} ({e})"));
        match tag {
            "OK" => Ok(v),
            "ERR" => Err(v),
            _ => panic!("{line}: {a}"),
        }
    }

    /// Closes stdin (a graceful leave) and waits for the process to end.
    fn stop(mut self) {
        self.process.stop(WAIT);
    }
}

fn start_rust_member(auto_port: u16, peers: &[String]) -> (ActorSystem, Cluster) {
    start_rust_member_with(
        auto_port,
        peers,
        vec![
            greeter_kind(GreeterGrain::default),
            counter_service_kind(CounterGrain::default),
        ],
    )
}

fn start_rust_member_with(
    auto_port: u16,
    peers: &[String],
    kinds: Vec<protoactor_cluster::Kind>,
) -> (ActorSystem, Cluster) {
    let system = ActorSystem::new();
    let remote = Remote::start(
        &system,
        RemoteConfig::new("127.0.0.1", 0).with_wire_variant(WireVariant::Legacy2024),
    )
    .expect("remote starts");
    register_types(remote.serialization());
    let provider = AutoManagedProvider::new(
        AutoManagedConfig::new(auto_port, peers.to_vec())
            .with_bind_host("127.0.0.1")
            .with_refresh(Duration::from_secs(1)),
    );
    let mut config = ClusterConfig::new("grains", provider, DistHashIdentityLookup::new());
    for kind in kinds {
        config = config.with_kind(kind);
    }
    let cluster = Cluster::start_member(&system, &remote, config).expect("cluster starts");
    (system, cluster)
}

/// A Rust member (this process; `kinds`, or the plain greeter and counter) and a Go member
/// process in one cluster, once each sees the other.
fn mixed_cluster(
    bin: &PathBuf,
    kinds: Option<Vec<protoactor_cluster::Kind>>,
) -> (ActorSystem, Cluster, GoMember) {
    let (rust_port, go_port) = (free_port(), free_port());
    let peers = [
        format!("127.0.0.1:{rust_port}"),
        format!("127.0.0.1:{go_port}"),
    ];
    let (system, cluster) = match kinds {
        Some(kinds) => start_rust_member_with(rust_port, &peers, kinds),
        None => start_rust_member(rust_port, &peers),
    };
    let mut go = GoMember::start(bin, go_port, &peers);

    // One topology on both sides.
    let rust_id = cluster.self_member().id.clone();
    let ml = cluster.member_list().clone();
    let go_id = go.id.clone();
    assert!(
        system
            .runtime()
            .block_on(ml.wait_until(WAIT, |t| t.member(&go_id).is_some())),
        "the Rust member sees the Go member"
    );
    let a = go.command(&format!(
        "await-members {} {rust_id} {go_id}",
        WAIT.as_millis()
    ));
    assert!(
        a.starts_with("MEMBERS"),
        "the Go member sees the Rust member: {a}"
    );
    (system, cluster, go)
}

/// An identity of `kind` that the member at `address` owns.
fn identity_on(cluster: &Cluster, kind: &str, address: &str, prefix: &str) -> String {
    let topology = cluster.member_list().topology();
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|id| topology.owner(kind, id) == Some(address))
        .unwrap()
}

fn metadata(v: &Value) -> HashMap<String, String> {
    serde_json::from_value(v["metadata"].clone()).unwrap_or_default()
}

fn greet(name: &str) -> GreetRequest {
    GreetRequest { name: name.into() }
}

#[test]
fn go_and_rust_generated_grains_call_each_other() {
    let Some(bin) = go_binary() else {
        return;
    };
    let (system, cluster, mut go) = mixed_cluster(&bin, None);
    let rust_addr = cluster.address().to_string();
    let on_rust = identity_on(&cluster, GREETER_KIND, &rust_addr, "r");
    let on_go = identity_on(&cluster, GREETER_KIND, &go.address, "g");

    // ---- Go's generated client → the Rust generated grain.
    let r = go
        .call(&format!("greet {on_rust} gopher"))
        .expect("Go greets Rust");
    assert_eq!(r["message"], format!("hello gopher from Greeter/{on_rust}"));
    assert_eq!(
        (r["address"].as_str(), r["calls"].as_i64()),
        (Some(rust_addr.as_str()), Some(1))
    );
    let e = go
        .call(&format!(
            "fail {on_rust} QUOTA_EXCEEDED too_many limit=3,scope=test 0"
        ))
        .unwrap_err();
    assert_eq!(
        (e["reason"].as_str(), e["message"].as_str()),
        (Some("QUOTA_EXCEEDED"), Some("too_many"))
    );
    assert_eq!(
        metadata(&e),
        HashMap::from([
            ("limit".into(), "3".into()),
            ("scope".into(), "test".into())
        ])
    );
    let e = go.call(&format!("lookup {on_rust} nobody")).unwrap_err();
    assert_eq!(e["reason"], "USER_NOT_FOUND");
    assert_eq!(e["user_not_found"], true, "Go's IsUserNotFound: {e}");
    assert_eq!(metadata(&e)["name"], "nobody");
    let r = go
        .call(&format!("lookup-future {on_rust} known"))
        .expect("LookupFuture");
    assert_eq!(r["message"], "found known");
    // Rust's reenterable Relay awaits a CounterService grain (on either member).
    let r = go
        .call(&format!("relay {on_rust} counter-a"))
        .expect("Relay on Rust");
    assert_eq!(r["value"], 1);
    // What a Go generated grain leaves unanswered, a Rust one answers.
    for index in [1, 9] {
        let e = go
            .call(&format!("raw Greeter {on_rust} {index} -"))
            .unwrap_err();
        assert_eq!(e["reason"], "UNIMPLEMENTED", "index {index}: {e}");
    }
    let e = go
        .call(&format!("raw Greeter {on_rust} 0 0aff"))
        .unwrap_err();
    assert_eq!(e["reason"], "INVALID_ARGUMENT", "{e}");

    // ---- Rust's generated client → the Go generated grain.
    let client = GreeterClient::new(&cluster, &on_go);
    let r = client
        .greet_blocking(greet("crab"))
        .expect("Rust greets Go");
    assert_eq!(r.message, format!("hello crab from Greeter/{on_go}"));
    assert_eq!((r.address.as_str(), r.calls), (go.address.as_str(), 1));
    let e = client
        .fail_blocking(FailRequest {
            reason: "QUOTA_EXCEEDED".into(),
            message: "too many".into(),
            metadata: [("limit".to_string(), "3".to_string())].into(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(is_quota_exceeded(&e), "{e}");
    assert_eq!(
        (e.message.as_str(), e.metadata["limit"].as_str()),
        ("too many", "3")
    );
    // A plain Go error becomes UNKNOWN (cluster.FromError).
    let e = client
        .fail_blocking(FailRequest {
            plain: true,
            message: "oops".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!((e.reason.as_str(), e.message.as_str()), ("UNKNOWN", "oops"));
    // Go's ErrUserNotFound is Rust's is_user_not_found.
    let e = client.lookup_blocking(greet("nobody")).unwrap_err();
    assert!(is_user_not_found(&e), "{e}");
    assert_eq!(
        (e.message.as_str(), e.metadata["name"].as_str()),
        ("no user nobody", "nobody")
    );
    let rt = system.runtime().clone();
    assert_eq!(
        rt.block_on(client.lookup_future(greet("known")))
            .unwrap()
            .message,
        "found known"
    );
    // Go's reenterable Relay, and an error it returns at once.
    assert_eq!(client.relay_blocking(greet("counter-b")).unwrap().value, 1);
    let e = client.relay_blocking(greet("")).unwrap_err();
    assert_eq!(e.reason, "INVALID_ARGUMENT");
    // The second service on Go.
    let on_go_counter = identity_on(&cluster, COUNTER_SERVICE_KIND, &go.address, "c");
    let c = CounterServiceClient::new(&cluster, &on_go_counter);
    assert_eq!(c.add_blocking(AddRequest { amount: 4 }).unwrap().value, 4);
    assert_eq!(c.get_blocking(Nothing {}).unwrap().value, 4);
    // An undecodable input: Go answers INVALID_ARGUMENT.
    let opts = CallOptions::default().with_timeout(Duration::from_secs(10));
    let bad = GrainRequest {
        method_index: 0,
        message_data: vec![0x0a, 0xff],
        message_type_name: String::new(),
    };
    let e: GrainError = cluster
        .request_blocking_as::<GreetResponse, _>(on_go.as_str(), GREETER_KIND, bad, &opts)
        .unwrap_err()
        .into();
    assert_eq!(e.reason, "INVALID_ARGUMENT", "{e}");
    // An unknown method index: Go's generated grain never answers, so the call ends at its
    // deadline, as DEADLINE_EXCEEDED.
    let short = CallOptions::default()
        .with_timeout(Duration::from_millis(1500))
        .with_max_attempts(1);
    let e: GrainError = cluster
        .request_blocking_as::<GreetResponse, _>(
            on_go.as_str(),
            GREETER_KIND,
            GrainRequest::new(1, &greet("x")),
            &short,
        )
        .unwrap_err()
        .into();
    assert_eq!(e.reason, "DEADLINE_EXCEEDED", "{e}");
    assert!(e.cluster_error().is_some());
    // The Go grain still works afterwards.
    assert_eq!(client.greet_blocking(greet("again")).unwrap().calls, 2);

    go.stop();
    cluster.shutdown_blocking(true);
    system.shutdown();
}

#[cfg(feature = "persistence")]
#[test]
fn go_calls_a_rust_persistent_grain() {
    use protoactor_cluster::persistent::{
        journal_name, GrainStore, InMemoryProvider, PersistentMessage, Provider,
    };
    use protoactor_cluster::ClusterIdentity;

    let Some(bin) = go_binary() else {
        return;
    };
    let store: Arc<dyn Provider> = Arc::new(InMemoryProvider::new());
    let kind =
        counter_service_persistent_kind(GrainStore::new(store.clone()), PersistentCounter::default);
    let (system, cluster, mut go) = mixed_cluster(&bin, Some(vec![kind]));
    let rust_addr = cluster.address().to_string();
    let id = identity_on(&cluster, COUNTER_SERVICE_KIND, &rust_addr, "p");

    // Go's generated client: each Add is answered after its event is in the journal.
    assert_eq!(go.call(&format!("add {id} 5")).expect("add")["value"], 5);
    assert_eq!(go.call(&format!("add {id} 7")).expect("add")["value"], 12);
    let journal = journal_name(COUNTER_SERVICE_KIND, &id);
    let events = system
        .runtime()
        .block_on(store.get_events(&journal, 0, 10))
        .expect("events");
    let types: Vec<&str> = events.iter().map(|e| e.record.type_name.as_str()).collect();
    assert_eq!(types, ["grainstest.AddRequest", "grainstest.AddRequest"]);

    // Stopped and activated again: the next activation recovers the two events.
    let ci = ClusterIdentity::new(&id, COUNTER_SERVICE_KIND);
    let pid = cluster.get_blocking(&ci).expect("activation");
    system.root().stop_future(&pid).wait().expect("stopped");
    let deadline = std::time::Instant::now() + WAIT;
    while cluster.activation_counts()[COUNTER_SERVICE_KIND] != 0 {
        assert!(std::time::Instant::now() < deadline, "the activation stops");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(go.call(&format!("add {id} 1")).expect("add")["value"], 13);

    // Another writer appends event 3 behind the activation's back: Go's next Add meets a
    // stale activation, and Go sees the retryable error (its client does not retry it).
    let foreign = AddRequest { amount: 100 }.to_record();
    system
        .runtime()
        .block_on(store.persist_event(&journal, 3, foreign))
        .expect("foreign write");
    let e = go.call(&format!("add {id} 1")).unwrap_err();
    assert_eq!(e["reason"], "UNAVAILABLE", "{e}");
    assert_eq!(metadata(&e)["stale_activation"], "true", "{e}");
    assert_eq!(metadata(&e)["journal"], journal, "{e}");
    // Go's retry reaches a new activation, which recovered all four events.
    let deadline = std::time::Instant::now() + WAIT;
    let value = loop {
        match go.call(&format!("add {id} 1")) {
            Ok(v) => break v["value"].clone(),
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "Go's retry: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    assert_eq!(value, 114);

    go.stop();
    cluster.shutdown_blocking(true);
    system.shutdown();
}
