//! The `cluster` workload's protoactor-rs members, each run as its own process (hidden
//! subcommands of this binary), mirroring `cluster-member` / `cluster-caller` of `bench/go`:
//!
//! ```text
//! __cluster-member HEALTH_PORT PEERS                         member 2: hosts kind "echo"
//! __cluster-caller HEALTH_PORT PEERS IDS SEQ REQUESTS CONC   member 1: hosts "echo", calls
//! __cluster-caller-management ...same...                     member 1 with the management
//!                                                              API on and a dashboard polling it
//! ```
//!
//! The `protoactor-rs-management` rows are the `protoactor-rs` ones with member 1 serving the
//! management API (so its grain calls record their latency per kind and method) and a
//! thread of the caller's process fetching what the dashboard fetches, once a second: the
//! cost of a member watched by an open dashboard.
//!
//! Both members join cluster `bench` on 127.0.0.1 with the automanaged provider (each serves
//! `/_health` on HEALTH_PORT and polls every `host:port` of PEERS) and the disthash identity
//! lookup (or, with [`LOOKUP_ENV`] set, the strongly consistent etcd lookup), and host kind `echo`: a grain answering `protoactor_bench.Ping{seq}` with
//! `Pong{seq}`. The caller waits until both members are in its topology, activates grains
//! `id-0` .. `id-<IDS-1>` (warm-up, not timed), then measures (the caller is a task on the
//! actor system's runtime, as Go's is a goroutine):
//!
//! * `cluster:p50` / `cluster:p99`: SEQ sequential `request(...).await` round trips, grain
//!   `i % IDS` for the i-th, the latency of each in µs, over the calls whose grain lives on
//!   member 2 (a round trip between the processes; about half of the grains);
//! * `cluster-local:p50` / `cluster-local:p99`: the same, over the calls whose grain lives
//!   on member 1 itself (no network). Kept apart because the share of each varies from run
//!   to run (the owner hash covers the members' random ports), and a median over both
//!   lands on one mode or the other by that share alone;
//! * `cluster-activate`: the warm-up's activations per second (IDS first calls by
//!   min(CONC, IDS) callers, each an activation round trip);
//! * `cluster`: REQUESTS requests by CONC concurrent callers (tokio tasks, each one request
//!   at a time, caller `k` calling grains `k, k + CONC, ...` modulo IDS), requests/s from the
//!   first request to the last reply.
//!
//! Remote messages use `WireVariant::Legacy2024`, as a member that protoactor-go members may
//! join must (and as the cluster examples do).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use protoactor::prelude::*;
use protoactor_cluster::automanaged::{AutoManagedConfig, AutoManagedProvider};
use protoactor_cluster::{
    CallOptions, Cluster, ClusterConfig, ClusterIdentity, DistHashIdentityLookup, Kind,
};
use protoactor_remote::{Remote, RemoteConfig, WireVariant};

use crate::common::{latency_metrics_named, report_to_parent, Metric};
use crate::remote_rs::proto::{Ping, Pong};

/// The cluster both members join, and the grain kind they host (the Go program uses the same).
const CLUSTER: &str = "bench";
const KIND: &str = "echo";
/// How often the automanaged provider polls the peers' `/_health` (Go: the same).
const REFRESH: Duration = Duration::from_millis(500);
/// How long the members may take to see each other.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The name of grain `i` (both languages).
pub fn identity(i: u64) -> String {
    format!("id-{i}")
}

/// The sizes of the caller, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerSizes {
    /// Grain identities (all activated in the warm-up).
    pub ids: u64,
    /// Sequential round trips (latency).
    pub seq: u64,
    /// Requests of the concurrent phase (throughput).
    pub requests: u64,
    /// Concurrent callers.
    pub concurrency: u64,
}

impl CallerSizes {
    /// Parses and checks `IDS SEQ REQUESTS CONC`.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let n: Vec<u64> = args
            .iter()
            .map(|a| {
                a.parse::<u64>()
                    .map_err(|_| format!("{a:?} is not a whole number"))
            })
            .collect::<Result<_, _>>()?;
        let [ids, seq, requests, concurrency] = n[..] else {
            return Err(format!(
                "needs 4 sizes (IDS SEQ REQUESTS CONC), got {}",
                n.len()
            ));
        };
        if ids == 0 || seq == 0 || requests == 0 || concurrency == 0 {
            return Err("cluster: sizes must be at least 1".into());
        }
        if concurrency > requests {
            return Err("cluster: more concurrent callers than requests".into());
        }
        Ok(CallerSizes {
            ids,
            seq,
            requests,
            concurrency,
        })
    }
}

pub(crate) fn port(s: &str) -> Result<u16, String> {
    s.parse().map_err(|_| format!("{s:?} is not a port number"))
}

pub(crate) fn peers(s: &str) -> Result<Vec<String>, String> {
    let p: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    if p.is_empty() || p.iter().any(|p| !p.contains(':')) {
        return Err(format!("peers must be host:port,host:port..., not {s:?}"));
    }
    Ok(p)
}

/// The grain: answers `Ping{seq}` with `Pong{seq}`.
fn echo_kind() -> Kind {
    Kind::new(
        KIND,
        Props::from_func(|ctx| {
            if let Some(p) = ctx.message_as::<Ping>() {
                let seq = p.seq;
                ctx.respond(Pong { seq });
            }
        }),
    )
}

/// The environment variable that puts both members of a run on the strongly consistent etcd
/// identity lookup: `<etcd endpoints>|<key base of this run>` (unset: disthash).
pub const LOOKUP_ENV: &str = "PROTOACTOR_BENCH_CLUSTER_LOOKUP";

/// The [`LOOKUP_ENV`] value of one `protoactor-rs-etcd-lookup` run (a key base of its own, so
/// a run never sees the keys an earlier run's members left on their leases), or why the rows
/// are skipped.
pub fn etcd_lookup_setting() -> Result<String, String> {
    if !cfg!(feature = "etcd") {
        return Err("skipped: built without the `etcd` feature (--features etcd)".into());
    }
    let endpoints = std::env::var("PROTOACTOR_ETCD_ENDPOINTS")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .ok_or("skipped: PROTOACTOR_ETCD_ENDPOINTS is not set (scripts/start-etcd.sh)")?;
    static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(format!(
        "{endpoints}|/protoactor-bench-activations/{}-{run}",
        std::process::id()
    ))
}

/// The identity lookup [`LOOKUP_ENV`] asks for.
fn lookup_from_env() -> Result<std::sync::Arc<dyn protoactor_cluster::IdentityLookup>, String> {
    let Ok(setting) = std::env::var(LOOKUP_ENV) else {
        return Ok(std::sync::Arc::new(DistHashIdentityLookup::new()));
    };
    #[cfg(feature = "etcd")]
    {
        use protoactor_cluster::etcd_lookup::{EtcdIdentityLookup, EtcdLookupConfig};
        let (endpoints, base) = setting
            .split_once('|')
            .ok_or_else(|| format!("{LOOKUP_ENV}: want endpoints|base, not {setting:?}"))?;
        let config = EtcdLookupConfig::new(endpoints.split(',')).with_base_key(base);
        Ok(std::sync::Arc::new(EtcdIdentityLookup::new(config)))
    }
    #[cfg(not(feature = "etcd"))]
    Err(format!("{LOOKUP_ENV}={setting:?} needs the `etcd` feature"))
}

/// A remote on 127.0.0.1 (any port) that knows `Ping`/`Pong`, and the automanaged provider
/// with its `/_health` on `health_port` polling `peers` (the cluster benches' members).
pub fn remote_and_provider(
    system: &ActorSystem,
    variant: WireVariant,
    health_port: u16,
    peers: Vec<String>,
) -> Result<(std::sync::Arc<Remote>, AutoManagedProvider), String> {
    let remote = Remote::start(
        system,
        RemoteConfig::new("127.0.0.1", 0).with_wire_variant(variant),
    )
    .map_err(|e| format!("cannot start remote: {e}"))?;
    remote.serialization().register::<Ping>();
    remote.serialization().register::<Pong>();
    let provider = AutoManagedProvider::new(
        AutoManagedConfig::new(health_port, peers)
            .with_bind_host("127.0.0.1")
            .with_refresh(REFRESH),
    );
    Ok((remote, provider))
}

/// Starts a member of cluster `bench` hosting `echo`, its `/_health` on `health_port`.
fn start_member(health_port: u16, peers: Vec<String>) -> Result<(ActorSystem, Cluster), String> {
    start_member_with(health_port, peers, |c| c)
}

/// [`start_member`] with more configuration (the pubsub workload adds pub/sub).
pub(crate) fn start_member_with(
    health_port: u16,
    peers: Vec<String>,
    configure: impl FnOnce(ClusterConfig) -> ClusterConfig,
) -> Result<(ActorSystem, Cluster), String> {
    let system = ActorSystem::new();
    let (remote, provider) =
        remote_and_provider(&system, WireVariant::Legacy2024, health_port, peers)?;
    let mut config = configure(
        ClusterConfig::new(CLUSTER, provider, DistHashIdentityLookup::new()).with_kind(echo_kind()),
    );
    config.identity_lookup = lookup_from_env()?;
    let cluster = Cluster::start_member(&system, &remote, config)
        .map_err(|e| format!("cannot start the member (health port {health_port}): {e}"))?;
    Ok((system, cluster))
}

/// Member 2: hosts `echo`, prints `READY`, serves until stdin closes.
pub fn member_main(args: &[String]) -> Result<(), String> {
    let [p, list] = args else {
        return Err("usage: __cluster-member HEALTH_PORT HOST:PORT,...".into());
    };
    let (_system, _cluster) = start_member(port(p)?, peers(list)?)?;
    println!("READY");
    let _ = std::io::stdout().flush();
    // The harness closes our stdin when the caller is done; the process exits right after
    // (nothing to hand over: the cluster ends with the benchmark).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}

/// The routes the dashboard page fetches on each refresh.
const DASHBOARD_ROUTES: [&str; 4] = [
    "/cluster/members",
    "/cluster/activations",
    "/cluster/requests",
    "/metrics",
];

/// Fetches what the dashboard fetches from `addr`, once a second, until `stop` is set;
/// returns how many refreshes it made (an error if any request failed).
fn poll_like_the_dashboard(
    addr: std::net::SocketAddr,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<u64, String> {
    let mut refreshes = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        for route in DASHBOARD_ROUTES {
            let mut s =
                std::net::TcpStream::connect(addr).map_err(|e| format!("management API: {e}"))?;
            write!(
                s,
                "GET {route} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .map_err(|e| format!("management API: {e}"))?;
            let mut answer = String::new();
            s.read_to_string(&mut answer)
                .map_err(|e| format!("management API: {e}"))?;
            if !answer.starts_with("HTTP/1.1 200") {
                return Err(format!("management API {route}: {answer}"));
            }
        }
        refreshes += 1;
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok(refreshes)
}

/// `__latency-record N`: what the management API adds to each grain call, measured alone:
/// N recordings (4 methods of 2 kinds, round robin, with the two clock reads a call makes)
/// and N checks of the switch a call reads when nothing records; prints ns per call.
pub fn latency_record_main(args: &[String]) -> Result<(), String> {
    use protoactor_cluster::latency::RequestLatencies;
    let n: u64 = match args {
        [n] => n
            .parse()
            .map_err(|_| format!("{n:?} is not a whole number"))?,
        _ => return Err("usage: __latency-record N".into()),
    };
    let l = RequestLatencies::default();
    let labels = [
        ("Account", "Deposit"),
        ("Account", "Withdraw"),
        ("Order", "Place"),
        ("Order", "Cancel"),
    ];
    let t = Instant::now();
    let mut off = 0u64;
    for _ in 0..n {
        off += u64::from(std::hint::black_box(&l).enabled());
    }
    let switch = t.elapsed();
    l.start_recording();
    let t = Instant::now();
    for i in 0..n {
        let (kind, method) = labels[(i % 4) as usize];
        let started = Instant::now();
        l.record(kind, method, started.elapsed(), true);
    }
    let on = t.elapsed();
    let recorded: u64 = l.snapshot().iter().map(|s| s.count).sum();
    if recorded != n || off != 0 {
        return Err(format!("recorded {recorded} of {n}, switch on {off} times"));
    }
    println!(
        "off: {:.2} ns per call (the switch); on: {:.1} ns per call (two clock reads and a recording)",
        switch.as_nanos() as f64 / n as f64,
        on.as_nanos() as f64 / n as f64
    );
    Ok(())
}

/// Member 1 with the management API on and a dashboard's polling (see the module docs).
pub fn caller_management_main(args: &[String]) -> Result<(), String> {
    caller(args, true)
}

/// Member 1: joins, waits for both members, runs the phases and prints `RESULT` lines.
pub fn caller_main(args: &[String]) -> Result<(), String> {
    caller(args, false)
}

fn caller(args: &[String], management: bool) -> Result<(), String> {
    let [p, list, sizes @ ..] = args else {
        return Err(
            "usage: __cluster-caller HEALTH_PORT HOST:PORT,... IDS SEQ REQUESTS CONC".into(),
        );
    };
    let sizes = CallerSizes::parse(sizes)?;
    let list = peers(list)?;
    let want = list.len();
    let (system, cluster) = start_member(port(p)?, list)?;
    let joined = system.runtime().block_on(
        cluster
            .member_list()
            .wait_until(JOIN_TIMEOUT, |t| t.len() >= want),
    );
    if !joined {
        return Err(format!(
            "only {} of {want} members joined within {} s",
            cluster.member_list().members().len(),
            JOIN_TIMEOUT.as_secs()
        ));
    }
    let watched = if management {
        use protoactor_cluster::management::{ManagementConfig, ManagementServer};
        let server =
            ManagementServer::start(&cluster, ManagementConfig::new(([127, 0, 0, 1], 0).into()))
                .map_err(|e| format!("cannot start the management API: {e}"))?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (addr, flag) = (server.address(), stop.clone());
        let poller = std::thread::spawn(move || poll_like_the_dashboard(addr, &flag));
        Some((server, stop, poller))
    } else {
        None
    };
    let metrics = run_caller(&cluster, sizes)?;
    if let Some((server, stop, poller)) = watched {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let refreshes = poller
            .join()
            .map_err(|_| "the dashboard poller panicked".to_string())??;
        if refreshes == 0 {
            return Err("the dashboard poller never refreshed".into());
        }
        server.stop();
    }
    report_to_parent(&metrics);
    Ok(())
}

/// One grain call, its reply checked.
async fn call(cluster: &Cluster, id: &str, seq: i64, opts: &CallOptions) -> Result<(), String> {
    let pong: Pong = cluster
        .request_as(id, KIND, Ping { seq }, opts)
        .await
        .map_err(|e| format!("grain {id}: {e}"))?;
    if pong.seq != seq {
        return Err(format!("grain {id} answered {} to {seq}", pong.seq));
    }
    Ok(())
}

/// `concurrency` tasks on the system's runtime, task `k` calling grains `k, k + concurrency,
/// ...` (modulo the identities) one at a time, `total` calls in all.
async fn concurrent(
    cluster: &Cluster,
    ids: &std::sync::Arc<Vec<String>>,
    total: u64,
    concurrency: u64,
    opts: &CallOptions,
) -> Result<(), String> {
    let mut tasks = Vec::with_capacity(concurrency as usize);
    for k in 0..concurrency {
        // Spread `total` evenly: the first `total % concurrency` tasks make one more call.
        let calls = total / concurrency + u64::from(k < total % concurrency);
        let (cluster, ids, opts) = (cluster.clone(), ids.clone(), opts.clone());
        tasks.push(cluster.system().runtime().clone().spawn(async move {
            for j in 0..calls {
                let i = (k + j * concurrency) % ids.len() as u64;
                call(&cluster, &ids[i as usize], j as i64, &opts).await?;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| format!("a caller task failed: {e}"))??;
    }
    Ok(())
}

/// The warm-up and the two timed phases (see the module docs).
pub fn run_caller(cluster: &Cluster, s: CallerSizes) -> Result<Vec<Metric>, String> {
    let ids: std::sync::Arc<Vec<String>> = std::sync::Arc::new((0..s.ids).map(identity).collect());
    let opts = CallOptions::default().with_timeout(Duration::from_secs(30));
    let c = cluster.clone();
    // The caller is a task on the actor system's runtime, as Go's caller is a goroutine: a
    // reply wakes it on the worker thread that handled the reply, not a thread parked
    // outside the runtime.
    let rt = cluster.system().runtime().clone();
    let caller = rt.spawn(async move {
        // Warm-up: every grain activated (and its PID cached) before the other clocks
        // start; its own rate is the activation row.
        let t = Instant::now();
        concurrent(&c, &ids, s.ids, s.concurrency.min(s.ids), &opts).await?;
        let activate = Metric::new(
            "cluster-activate",
            s.ids as f64 / t.elapsed().as_secs_f64(),
            "activations/s",
        );
        let mut remote = Vec::with_capacity(ids.len());
        for id in ids.iter() {
            let pid = c
                .get(&ClusterIdentity::new(id.as_str(), KIND))
                .await
                .map_err(|e| format!("grain {id}: {e}"))?;
            remote.push(pid.address() != c.address());
        }
        let (mut near, mut far) = (Vec::new(), Vec::new());
        for i in 0..s.seq {
            let k = (i % s.ids) as usize;
            let t = Instant::now();
            call(&c, &ids[k], i as i64, &opts).await?;
            let took = t.elapsed();
            if remote[k] {
                far.push(took);
            } else {
                near.push(took);
            }
        }
        let t = Instant::now();
        concurrent(&c, &ids, s.requests, s.concurrency, &opts).await?;
        let took = t.elapsed();
        let mut metrics = vec![
            activate,
            Metric::new("cluster", s.requests as f64 / took.as_secs_f64(), "req/s"),
        ];
        if far.is_empty() || near.is_empty() {
            return Err(format!(
                "the sequential calls found {} grains on member 1 and {} on member 2: \
                 both must host some (more identities?)",
                near.len(),
                far.len()
            ));
        }
        metrics.extend(latency_metrics_named("cluster", &mut far));
        metrics.extend(latency_metrics_named("cluster-local", &mut near));
        Ok(metrics)
    });
    rt.block_on(caller)
        .map_err(|e| format!("the caller task failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use protoactor_testkit::process::args;

    #[test]
    fn sizes_and_arguments_are_checked() {
        assert_eq!(
            CallerSizes::parse(&args("1000 20 300 10")),
            Ok(CallerSizes {
                ids: 1000,
                seq: 20,
                requests: 300,
                concurrency: 10
            })
        );
        assert!(CallerSizes::parse(&args("1000 20 300")).is_err());
        assert!(CallerSizes::parse(&args("0 20 300 10")).is_err());
        assert!(CallerSizes::parse(&args("10 20 5 10")).is_err());
        assert!(CallerSizes::parse(&args("10 x 5 1")).is_err());
        assert!(peers("6000").is_err());
        assert_eq!(peers("127.0.0.1:1, 127.0.0.1:2").unwrap().len(), 2);
        assert!(member_main(&args("notaport 127.0.0.1:1")).is_err());
        assert!(caller_main(&args("1 127.0.0.1:1 5")).is_err());
    }

    #[test]
    fn two_members_in_one_process_answer_every_phase() {
        let _alone = crate::alloc::tests::ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let [pa, pb] = crate::common::free_ports().expect("two free ports");
        let list = vec![format!("127.0.0.1:{pa}"), format!("127.0.0.1:{pb}")];
        let (sys_b, b) = start_member(pb, list.clone()).unwrap();
        let (sys_a, a) = start_member(pa, list).unwrap();
        let joined = sys_a
            .runtime()
            .block_on(a.member_list().wait_until(JOIN_TIMEOUT, |t| t.len() == 2));
        assert!(joined, "both members in the topology");
        let sizes = CallerSizes::parse(&args("100 200 500 8")).unwrap();
        let m = run_caller(&a, sizes).unwrap();
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cluster-activate",
                "cluster",
                "cluster:p50",
                "cluster:p99",
                "cluster-local:p50",
                "cluster-local:p99"
            ]
        );
        assert!(m.iter().all(|m| m.value.is_finite() && m.value > 0.0));
        // Both members host grains: every identity was activated exactly once, spread.
        let (on_a, on_b) = (a.activation_counts()[KIND], b.activation_counts()[KIND]);
        assert_eq!(on_a + on_b, 100, "{on_a} + {on_b}");
        assert!(on_a > 0 && on_b > 0, "{on_a} / {on_b}");
        a.shutdown_blocking(false);
        b.shutdown_blocking(false);
        sys_a.shutdown();
        sys_b.shutdown();
    }
}
