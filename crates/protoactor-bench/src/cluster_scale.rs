//! `cluster-scale [GRAINS...]`: a topology change at scale, measured (issue 22).
//!
//! ```text
//! cargo run --release -p protoactor-bench -- cluster-scale 100000
//! ```
//!
//! Three members of cluster `scale` on 127.0.0.1 (automanaged provider, disthash):
//! * `a`, this process: hosts nothing, calls (so it holds the PID cache);
//! * `b`, `c`: child processes (`__scale-member HEALTH_PORT PEERS`) hosting kind `idle`, a
//!   grain that answers `Ping` with `Pong`.
//!
//! With `a` and `b` up, `a` activates GRAINS grains (all on `b`, the only host), and the
//! resident growth of `b` per grain and of `a` per cached PID is read from `/proc/PID/statm`
//! (so it includes the allocator's overhead and what the activation traffic left behind).
//! Then `c` starts while 64 callers on `a` call random grains (5 s deadline each); about
//! half the grains move to `c`. Reported: grains moved (`b`'s activations stopped), time
//! from `a` seeing `c` join until `b`'s gossiped activation count is what the new topology
//! leaves it, calls made meanwhile, the slowest call, calls that failed or took longer than
//! their deadline, and every member blocked by any of the three (a false "heartbeat
//! expired": all three stay alive throughout).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;
use protoactor::prelude::*;
use protoactor_cluster::gossip::{Gossiper, HEARTBEAT_KEY};
use protoactor_cluster::proto::MemberHeartbeat;
use protoactor_cluster::{
    CallOptions, Cluster, ClusterConfig, ClusterIdentity, DistHashIdentityLookup, Kind,
};
use protoactor_remote::WireVariant;

use crate::remote_rs::proto::{Ping, Pong};

const CLUSTER: &str = "scale";
const KIND: &str = "idle";
const CALLERS: usize = 64;
const DEADLINE: Duration = Duration::from_secs(5);
const SETTLE_LIMIT: Duration = Duration::from_secs(300);

fn identity(i: u64) -> String {
    format!("user-{i:08}")
}

/// Resident bytes of process `pid` (Linux).
fn resident(pid: u32) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// This process's resident bytes once the allocator gave its free pages back.
fn own_resident() -> u64 {
    crate::alloc::release_free_memory();
    resident(std::process::id())
}

fn start(
    health_port: u16,
    peers: Vec<String>,
    host: bool,
) -> Result<(ActorSystem, Cluster), String> {
    let system = ActorSystem::new();
    let (remote, provider) =
        crate::cluster_rs::remote_and_provider(&system, WireVariant::Current, health_port, peers)?;
    let mut config = ClusterConfig::new(CLUSTER, provider, DistHashIdentityLookup::new());
    if host {
        config = config.with_kind(Kind::new(
            KIND,
            Props::from_func(|ctx| {
                if let Some(p) = ctx.message_as::<Ping>() {
                    let seq = p.seq;
                    ctx.respond(Pong { seq });
                }
            }),
        ));
    }
    let cluster = Cluster::start_member(&system, &remote, config)
        .map_err(|e| format!("cannot start the member: {e}"))?;
    Ok((system, cluster))
}

/// The ids this member blocked at any time, polled every 20 ms in the background.
fn watch_blocks(cluster: &Cluster, stop: Arc<AtomicBool>) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (c, s) = (cluster.clone(), seen.clone());
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            for id in c.member_list().blocked() {
                let mut s = s.lock().expect("not poisoned");
                if !s.contains(&id) {
                    s.push(id);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    seen
}

/// `__scale-member HEALTH_PORT PEERS`: hosts `idle`, prints `READY <member id>`; on each
/// stdin line `report` prints `BLOCKED <ids ever blocked, comma-separated>`; exits at EOF.
pub fn member_main(args: &[String]) -> Result<(), String> {
    let [p, list] = args else {
        return Err("usage: __scale-member HEALTH_PORT HOST:PORT,...".into());
    };
    let port: u16 = p.parse().map_err(|_| format!("{p:?} is not a port"))?;
    let peers = list.split(',').map(str::to_string).collect();
    let (_system, cluster) = start(port, peers, true)?;
    let blocked = watch_blocks(&cluster, Arc::new(AtomicBool::new(false)));
    println!("READY {}", cluster.self_member().id);
    let _ = std::io::stdout().flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "report" => println!(
                "BLOCKED {}",
                blocked.lock().expect("not poisoned").join(",")
            ),
            "trim" => {
                crate::alloc::release_free_memory();
                println!("TRIMMED");
            }
            _ => {}
        }
        let _ = std::io::stdout().flush();
    }
    Ok(())
}

struct MemberProcess {
    child: Child,
    stdin: ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
    id: String,
}

impl MemberProcess {
    fn start(health_port: u16, peers: &str) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args(["__scale-member", &health_port.to_string(), peers])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start a member: {e}"))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut m = MemberProcess {
            child,
            stdin,
            lines,
            id: String::new(),
        };
        let ready = m.line("READY ", Duration::from_secs(60))?;
        m.id = ready.trim().to_string();
        Ok(m)
    }

    /// The rest of the next line starting with `prefix`.
    fn line(&self, prefix: &str, within: Duration) -> Result<String, String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if let Some(rest) = l.strip_prefix(prefix) {
                        return Ok(rest.to_string());
                    }
                }
                Err(_) => return Err(format!("no {prefix:?} line from a member")),
            }
        }
    }

    /// Resident bytes once the member gave its allocator's free pages back.
    fn resident(&mut self) -> Result<u64, String> {
        writeln!(self.stdin, "trim").map_err(|e| e.to_string())?;
        self.line("TRIMMED", Duration::from_secs(30))?;
        Ok(resident(self.child.id()))
    }

    fn blocked(&mut self) -> Result<Vec<String>, String> {
        writeln!(self.stdin, "report").map_err(|e| e.to_string())?;
        let l = self.line("BLOCKED", Duration::from_secs(10))?;
        Ok(l.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }
}

impl Drop for MemberProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `member`'s activations of `KIND` as its last heartbeat seen by `gossiper` says.
fn gossiped_count(gossiper: &Gossiper, member: &str) -> Option<i64> {
    let v = gossiper.get_state(HEARTBEAT_KEY).remove(member)?;
    let hb = MemberHeartbeat::decode(&v.value?.value[..]).ok()?;
    hb.actor_statistics?.actor_count.get(KIND).copied()
}

fn wait_for(what: &str, within: Duration, mut check: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + within;
    while !check() {
        if Instant::now() > deadline {
            return Err(format!("{what}: not within {} s", within.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// One run with `grains` grains; prints one table row.
fn run_one(grains: u64) -> Result<(), String> {
    let ports: [u16; 3] = crate::common::free_ports()?;
    let peers: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let list = peers.join(",");
    let mut b = MemberProcess::start(ports[1], &list)?;
    let (system, a) = start(ports[0], peers, false)?;
    let stop_watch = Arc::new(AtomicBool::new(false));
    let a_blocked = watch_blocks(&a, stop_watch.clone());
    wait_for("a and b see each other", Duration::from_secs(60), || {
        a.member_list().members().len() == 2
    })?;
    let gossiper = system.extension::<Gossiper>().ok_or("a gossips")?;

    // Activate every grain (all on b), 512 at a time.
    let (b0, a0) = (b.resident()?, own_resident());
    let started = Instant::now();
    system.runtime().block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..grains {
            if set.len() >= 512 {
                set.join_next().await;
            }
            let f = a.get(&ClusterIdentity::new(identity(i), KIND));
            set.spawn(f);
        }
        while let Some(r) = set.join_next().await {
            r.map_err(|e| e.to_string())?
                .map_err(|e| format!("activation failed: {e}"))?;
        }
        Ok::<_, String>(())
    })?;
    let activation = started.elapsed();
    wait_for("b gossips its activations", Duration::from_secs(60), || {
        gossiped_count(&gossiper, &b.id) == Some(grains as i64)
    })?;
    let (b1, a1) = (b.resident()?, own_resident());
    let per_grain = b1.saturating_sub(b0) / grains;
    let per_pid = a1.saturating_sub(a0) / grains;

    // Callers run while c joins.
    let calling = Arc::new(AtomicBool::new(true));
    let calls = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let late = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(AtomicU64::new(0));
    let errors: Arc<Mutex<std::collections::BTreeMap<String, u64>>> = Arc::default();
    let mut callers = Vec::new();
    for k in 0..CALLERS as u64 {
        let (a, calling, calls, failed, late, slowest, errors) = (
            a.clone(),
            calling.clone(),
            calls.clone(),
            failed.clone(),
            late.clone(),
            slowest.clone(),
            errors.clone(),
        );
        callers.push(system.runtime().spawn(async move {
            let opts = CallOptions::default().with_timeout(DEADLINE);
            let mut i = k;
            while calling.load(Ordering::Relaxed) {
                i = (i * 6_364_136_223_846_793_005 + 1_442_695_040_888_963_407) % (1 << 62);
                let id = identity(i % grains);
                let t = Instant::now();
                let r = a
                    .request_as::<Pong, _>(id, KIND, Ping { seq: 1 }, &opts)
                    .await;
                let took = t.elapsed();
                calls.fetch_add(1, Ordering::Relaxed);
                slowest.fetch_max(took.as_micros() as u64, Ordering::Relaxed);
                if let Err(e) = r {
                    failed.fetch_add(1, Ordering::Relaxed);
                    // The error's kind, without the identity.
                    let kind = format!("{e:?}");
                    let kind = kind
                        .split(['{', '('])
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    *errors
                        .lock()
                        .expect("not poisoned")
                        .entry(kind)
                        .or_default() += 1;
                }
                if took > DEADLINE + Duration::from_millis(100) {
                    late.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(1));
    let mut c = MemberProcess::start(ports[2], &list)?;
    wait_for("a sees c join", Duration::from_secs(60), || {
        a.member_list().members().len() == 3
    })?;
    let joined = Instant::now();
    calls.store(0, Ordering::Relaxed);
    slowest.store(0, Ordering::Relaxed);
    let topology = a.member_list().topology();
    let b_address = topology
        .member(&b.id)
        .map(|m| m.address())
        .ok_or("b is in the topology")?;
    let stays = (0..grains)
        .filter(|i| topology.owner(KIND, &identity(*i)) == Some(b_address.as_str()))
        .count() as i64;
    wait_for("b stops the grains c took", SETTLE_LIMIT, || {
        gossiped_count(&gossiper, &b.id).is_some_and(|n| n <= stays)
    })?;
    let settle = joined.elapsed();
    let moved = grains as i64 - gossiped_count(&gossiper, &b.id).unwrap_or(0);
    // Late expiries show after the move: keep calling a little longer.
    std::thread::sleep(Duration::from_secs(3));
    calling.store(false, Ordering::Relaxed);
    system.runtime().block_on(async {
        for c in callers {
            let _ = c.await;
        }
    });
    stop_watch.store(true, Ordering::Relaxed);
    let mut blocked: Vec<String> = a_blocked.lock().expect("not poisoned").clone();
    blocked.extend(b.blocked()?);
    blocked.extend(c.blocked()?);
    println!(
        "| {grains} | {:.1} s | {per_grain} B | {per_pid} B | {moved} | {:.2} s | {} | {:.0} ms | {} / {} | {} |",
        activation.as_secs_f64(),
        settle.as_secs_f64(),
        calls.load(Ordering::Relaxed),
        slowest.load(Ordering::Relaxed) as f64 / 1e3,
        failed.load(Ordering::Relaxed),
        late.load(Ordering::Relaxed),
        if blocked.is_empty() {
            "none".to_string()
        } else {
            format!("{} blocked: {}", blocked.len(), blocked.join(", "))
        }
    );
    let errors = errors.lock().expect("not poisoned").clone();
    if !errors.is_empty() {
        eprintln!("failed calls by error: {errors:?}");
    }
    a.shutdown_blocking(false);
    system.shutdown();
    drop(b);
    drop(c);
    Ok(())
}

/// `cluster-scale [GRAINS...]` (default 100000).
pub fn main(args: &[String]) -> Result<(), String> {
    let sizes: Vec<u64> = if args.is_empty() {
        vec![100_000]
    } else {
        args.iter()
            .map(|a| {
                a.parse()
                    .map_err(|_| format!("{a:?} is not a number of grains"))
            })
            .collect::<Result<_, _>>()?
    };
    println!("| grains | activation | `b` resident per idle grain | `a` resident per cached PID | grains moved by the join | time to settle | calls during the move | slowest call | failed / over the 5 s deadline | members blocked |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for g in sizes {
        run_one(g)?;
    }
    Ok(())
}
