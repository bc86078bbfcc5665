//! Calls that fail over: three Rust member processes on the automanaged provider and a Rust
//! client process (`start_client`) calling 300 grains without pause, with the default
//! options (5 s deadline). Members are killed with SIGKILL, restarted and stopped
//! gracefully; after each step the test asserts that no call failed and that the
//! identities of the member that went away answered again from another member within the
//! client's detection time (its topology dropping the member) plus a margin, and prints the
//! figures (failed calls, detection, time to answer again).
//!
//! Every wait is for an answer line of a process; the processes wait for events (a topology
//! change, an identity answering from elsewhere) with deadlines.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use protoactor_cluster::{CallOptions, Cluster, ClusterTopology};
use protoactor_testkit::cluster::*;

const KIND: &str = "hello";
/// Longest wait for a topology change (polls every second; a member leaves after two
/// missed polls in a row).
const TOPOLOGY: Duration = Duration::from_secs(60);
/// How many identities the client keeps calling, and with how many calls in flight.
const IDENTITIES: usize = 300;
const WORKERS: usize = 6;
/// What "answers again within the detection time + 1 s" may take on a loaded machine.
const RECOVERY_SLACK_MS: u64 = 3_000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

// ------------------------------------------------------------------ the child side

/// Calls of the client's load since the last report.
#[derive(Default)]
struct Stats {
    calls: u64,
    failed: u64,
    errors: Vec<String>,
    max_ms: u64,
    /// identity -> (end ms, address) of each success at another address than the one before.
    history: HashMap<String, Vec<(u64, String)>>,
    /// (ms, address) of every member that left the client's topology.
    left: Vec<(u64, String)>,
}

struct Load {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<Stats>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

static LOAD: Mutex<Option<Load>> = Mutex::new(None);

fn load_start(cluster: &Cluster, kind: &str, n: usize, workers: usize) -> String {
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Mutex::new(Stats::default()));
    let s = stats.clone();
    // Not unsubscribed: the load lives as long as the process.
    let _ = cluster
        .system()
        .event_stream()
        .subscribe_to::<ClusterTopology, _>(move |t| {
            let at = now_ms();
            let mut s = s.lock();
            for m in &t.left {
                s.left.push((at, m.address()));
            }
        });
    let ids: Vec<String> = (0..n).map(|i| format!("f-{i}")).collect();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (cluster, stop, stats, kind) = (
            cluster.clone(),
            stop.clone(),
            stats.clone(),
            kind.to_string(),
        );
        let mine: Vec<String> = ids.iter().skip(w).step_by(workers).cloned().collect();
        let rt = cluster.system().runtime().clone();
        tasks.push(rt.spawn(async move {
            let opts = CallOptions::default();
            while !stop.load(Ordering::Acquire) {
                for id in &mine {
                    let start = now_ms();
                    let r = cluster
                        .request_as::<HelloResponse, _>(
                            id.as_str(),
                            kind.as_str(),
                            HelloRequest {
                                name: "load".into(),
                            },
                            &opts,
                        )
                        .await;
                    let end = now_ms();
                    let mut s = stats.lock();
                    s.calls += 1;
                    s.max_ms = s.max_ms.max(end - start);
                    match r {
                        Ok(r) => {
                            let h = s.history.entry(id.clone()).or_default();
                            if h.last().is_none_or(|(_, a)| *a != r.address) {
                                h.push((end, r.address));
                            }
                        }
                        Err(e) => {
                            s.failed += 1;
                            if s.errors.len() < 5 {
                                s.errors.push(format!("{id}@{start}+{}ms:{e}", end - start));
                            }
                        }
                    }
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                }
            }
        }));
    }
    *LOAD.lock() = Some(Load { stop, stats, tasks });
    format!("STATS started {n} identities, {workers} calls in flight")
}

/// Waits until every identity whose last answer before `kill_ms` came from `dead` answered
/// from another member (`dead` = `-`: until every identity answered once), then reports the
/// calls since the last report and resets them.
fn load_await(dead: &str, kill_ms: u64, timeout_ms: u64) -> String {
    let Some(stats) = LOAD.lock().as_ref().map(|l| l.stats.clone()) else {
        return "ERROR no load".into();
    };
    let deadline = now_ms() + timeout_ms;
    loop {
        let (pending, recovered) = {
            let s = stats.lock();
            let mut pending = 0usize;
            let mut recovered = Vec::new();
            if dead == "-" {
                pending = IDENTITIES.saturating_sub(s.history.len());
            } else {
                for h in s.history.values() {
                    let before = h.iter().rev().find(|(t, _)| *t <= kill_ms);
                    if before.is_none_or(|(_, a)| a != dead) {
                        continue;
                    }
                    match h.iter().find(|(t, a)| *t > kill_ms && a != dead) {
                        Some((t, _)) => recovered.push(t - kill_ms),
                        None => pending += 1,
                    }
                }
            }
            (pending, recovered)
        };
        if pending == 0 {
            let mut s = stats.lock();
            let left_ms = s
                .left
                .iter()
                .find(|(t, a)| *t >= kill_ms && a == dead)
                .map_or(-1, |(t, _)| (*t - kill_ms) as i64);
            let mut r = recovered;
            r.sort_unstable();
            let p50 = r.get(r.len() / 2).copied().unwrap_or(0);
            let max = r.last().copied().unwrap_or(0);
            let line = format!(
                "STATS calls={} failed={} max_call_ms={} moved={} recover_p50_ms={p50} recover_max_ms={max} left_ms={left_ms} errors={}",
                s.calls,
                s.failed,
                s.max_ms,
                r.len(),
                s.errors.join(";").replace(' ', "_")
            );
            s.calls = 0;
            s.failed = 0;
            s.max_ms = 0;
            s.errors.clear();
            return line;
        }
        if now_ms() > deadline {
            return format!(
                "ERROR timeout: {pending} identities never answered from another member"
            );
        }
        // The load runs in this process; its counters are polled, bounded by the deadline.
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn load_stop() -> String {
    let Some(load) = LOAD.lock().take() else {
        return "ERROR no load".into();
    };
    load.stop.store(true, Ordering::Release);
    for t in load.tasks {
        t.abort();
    }
    let s = load.stats.lock();
    format!("STATS calls={} failed={}", s.calls, s.failed)
}

fn extra(cluster: &Cluster, line: &str) -> Option<String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    Some(match f.as_slice() {
        ["load-start", kind, n, workers] => match (n.parse(), workers.parse()) {
            (Ok(n), Ok(w)) => load_start(cluster, kind, n, w),
            _ => format!("ERROR bad load-start {line}"),
        },
        ["load-await", dead, kill_ms, timeout_ms] => match (kill_ms.parse(), timeout_ms.parse()) {
            (Ok(k), Ok(t)) => load_await(dead, k, t),
            _ => format!("ERROR bad load-await {line}"),
        },
        ["load-stop"] => load_stop(),
        _ => return None,
    })
}

/// Child mode of this binary (the name `MemberProcess::rust` runs): a Rust member, or with
/// no kinds a client, with the load commands above. Does nothing when run as a test.
#[test]
fn rust_member_child() {
    run_rust_member_if_child_with(extra);
}

// ------------------------------------------------------------------ the test

fn start(label: &str, peers: &AutoManagedPeers, i: usize) -> MemberProcess {
    MemberProcess::rust(label, CLUSTER, &peers.provider(i), &[KIND])
}

/// A Rust client process polling every member of `peers`.
fn start_client(peers: &AutoManagedPeers) -> MemberProcess {
    let provider = Provider::AutoManaged {
        auto_port: 0,
        peers: peers.peers.clone(),
    };
    MemberProcess::rust("client", CLUSTER, &provider, &[])
}

/// One report of `load-await`, parsed.
#[derive(Debug)]
struct Report {
    line: String,
    fields: HashMap<String, String>,
}

impl Report {
    fn num(&self, k: &str) -> i64 {
        self.fields
            .get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {}", self.line))
    }
}

fn await_load(client: &mut MemberProcess, dead: &str, kill_ms: u64) -> Report {
    let line = client.command(&format!(
        "load-await {dead} {kill_ms} {}",
        TOPOLOGY.as_millis()
    ));
    assert!(line.starts_with("STATS "), "{line}");
    let fields = line
        .split(' ')
        .skip(1)
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Report { line, fields }
}

/// Asserts what a member going away may cost: no failed call, and its identities answer
/// again within the client's detection time plus the slack. Prints the figures.
fn check(step: &str, r: &Report) {
    eprintln!("failover figures, {step}: {}", r.line);
    assert_eq!(r.num("failed"), 0, "{step}: calls failed: {}", r.line);
    let left = r.num("left_ms");
    assert!(
        left >= 0,
        "{step}: the client never saw the member leave: {}",
        r.line
    );
    assert!(r.num("moved") > 0, "{step}: no identity moved: {}", r.line);
    let recover = r.num("recover_max_ms");
    assert!(
        recover <= left + RECOVERY_SLACK_MS as i64,
        "{step}: identities answered again only after {recover} ms (detection {left} ms): {}",
        r.line
    );
}

#[test]
fn calls_fail_over_when_members_are_killed_restarted_and_stopped() {
    let peers = AutoManagedPeers::new(3);
    let mut a = start("a", &peers, 0);
    let mut b = start("b", &peers, 1);
    let mut c = start("c", &peers, 2);
    let mut client = start_client(&peers);
    let ids = [a.id.clone(), b.id.clone(), c.id.clone()];
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for m in [&mut a, &mut b, &mut c, &mut client] {
        m.await_members(&ids, TOPOLOGY);
    }
    let started = client.command(&format!("load-start {KIND} {IDENTITIES} {WORKERS}"));
    assert!(started.starts_with("STATS"), "{started}");
    let warm = await_load(&mut client, "-", now_ms());
    assert_eq!(warm.num("failed"), 0, "{}", warm.line);

    // SIGKILL c.
    let (c_id, c_address) = (c.id.clone(), c.address.clone());
    let kill = now_ms();
    c.kill();
    let r = await_load(&mut client, &c_address, kill);
    check("kill -9 c", &r);
    for m in [&mut a, &mut b] {
        m.await_absent(&[&c_id], TOPOLOGY);
    }

    // c comes back (a new process, a new member): identities move to it while calls go on.
    let mut c = start("c2", &peers, 2);
    let ids = [a.id.clone(), b.id.clone(), c.id.clone()];
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for m in [&mut a, &mut b, &mut c, &mut client] {
        m.await_members(&ids, TOPOLOGY);
    }
    let joined = await_load(&mut client, "-", now_ms());
    assert_eq!(joined.num("failed"), 0, "join: {}", joined.line);
    eprintln!("failover figures, join c2: {}", joined.line);

    // SIGKILL b.
    let b_address = b.address.clone();
    let kill = now_ms();
    b.kill();
    let r = await_load(&mut client, &b_address, kill);
    check("kill -9 b", &r);

    // a stops gracefully.
    let a_address = a.address.clone();
    let stop = now_ms();
    let status = a.stop();
    assert!(status.success(), "a exited with {status}");
    let r = await_load(&mut client, &a_address, stop);
    check("graceful stop of a", &r);
    let total = client.command("load-stop");
    eprintln!("failover figures, rest: {total}");
    drop(c);
}

/// The same with protoactor-go members (the pinned module): two Go members and one Rust
/// member, the Rust client calling. Go members activate what they are asked and stop their
/// grains after leaving (their own order); the client still fails no call when a Go member
/// is killed or stops gracefully, or when the Rust member is killed.
#[test]
fn calls_fail_over_in_a_cluster_with_go_members() {
    let peers = AutoManagedPeers::new(3);
    let go = |label: &str, i: usize| MemberProcess::go(label, CLUSTER, &peers.provider(i), &[KIND]);
    let Some(mut g1) = go("go1", 0) else {
        return;
    };
    let mut g2 = go("go2", 1).expect("go member");
    let mut r = start("rust", &peers, 2);
    let mut client = start_client(&peers);
    let ids = [g1.id.clone(), g2.id.clone(), r.id.clone()];
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for m in [&mut g1, &mut g2, &mut r, &mut client] {
        m.await_members(&ids, TOPOLOGY);
    }
    let started = client.command(&format!("load-start {KIND} {IDENTITIES} {WORKERS}"));
    assert!(started.starts_with("STATS"), "{started}");
    let warm = await_load(&mut client, "-", now_ms());
    assert_eq!(warm.num("failed"), 0, "{}", warm.line);

    let g1_address = g1.address.clone();
    let kill = now_ms();
    g1.kill();
    check(
        "mixed: kill -9 Go member",
        &await_load(&mut client, &g1_address, kill),
    );

    let g2_address = g2.address.clone();
    let stop = now_ms();
    let status = g2.stop();
    assert!(status.success(), "go2 exited with {status}");
    check(
        "mixed: graceful stop of a Go member",
        &await_load(&mut client, &g2_address, stop),
    );

    // A Go member again, then the Rust member killed: its identities go to the Go member.
    let mut g3 = go("go3", 0).expect("go member");
    let ids = [g3.id.clone(), r.id.clone()];
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for m in [&mut g3, &mut r, &mut client] {
        m.await_members(&ids, TOPOLOGY);
    }
    let joined = await_load(&mut client, "-", now_ms());
    assert_eq!(joined.num("failed"), 0, "join: {}", joined.line);
    let r_address = r.address.clone();
    let kill = now_ms();
    r.kill();
    check(
        "mixed: kill -9 Rust member",
        &await_load(&mut client, &r_address, kill),
    );
    let total = client.command("load-stop");
    eprintln!("failover figures, mixed, rest: {total}");
    drop(g3);
}
