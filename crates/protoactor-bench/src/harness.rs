//! The parent side: options, building the Go program, running each implementation in its
//! own child process round after round, and handing the samples to the report.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::common::{free_ports, Metric};
use crate::machine::{MachineState, Snapshot, Usage, BUSY_LOAD, TICKS_PER_S};
use crate::report::{Report, Sample};
use crate::workloads::{self, Shape, Workload, WORKLOADS};

/// The implementations of the local workloads, in table order.
#[cfg(not(feature = "mimalloc"))]
pub const LOCAL_IMPLS: &[&str] = &[
    "protoactor-rs",
    "protoactor-rs-pinned",
    "protoactor-go",
    "kameo",
    "ractor",
    "actix",
];

/// The implementations of the local workloads, in table order; with the `mimalloc`
/// feature, `protoactor-rs-mimalloc` is protoactor-rs on mimalloc (see `alloc`).
#[cfg(feature = "mimalloc")]
pub const LOCAL_IMPLS: &[&str] = &[
    "protoactor-rs",
    "protoactor-rs-mimalloc",
    "protoactor-rs-pinned",
    "protoactor-go",
    "kameo",
    "ractor",
    "actix",
];

/// The single-chain workloads (one message in flight, handed from actor to actor), which
/// `protoactor-rs-pinned` runs with its actors on one pinned thread, as actix runs them.
pub const PINNED_WORKLOADS: &[&str] = &[
    "savina-ping-pong",
    "savina-thread-ring",
    "skynet",
    "spawn",
    "spawn-root",
];

/// Whether `imp` runs `w` locally: the workload's own list, and the pinned variant only on
/// the single-chain rows.
fn runs_locally(imp: &str, w: &Workload) -> bool {
    // The mimalloc variant runs wherever protoactor-rs does.
    let listed = if imp == "protoactor-rs-mimalloc" {
        "protoactor-rs"
    } else {
        imp
    };
    w.impls.is_none_or(|only| only.contains(&listed))
        && (imp != "protoactor-rs-pinned" || PINNED_WORKLOADS.contains(&w.name))
}

/// Command-line options.
pub struct Options {
    workloads: Vec<&'static Workload>,
    quick: bool,
    json: Option<PathBuf>,
    rounds: usize,
    only: Option<Vec<String>>,
    compare: Option<PathBuf>,
    allow_busy: bool,
}

impl Options {
    /// Parses the arguments; `Ok(None)` means help was asked for (or `--list` printed).
    pub fn parse(args: &[String]) -> Result<Option<Self>, String> {
        let mut names = Vec::new();
        let (mut quick, mut json, mut rounds, mut only) = (false, None, None, None);
        let (mut compare, mut allow_busy) = (None, false);
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--quick" => quick = true,
                "--allow-busy" => allow_busy = true,
                "--json" => json = Some(PathBuf::from(it.next().ok_or("--json needs a FILE")?)),
                "--compare" => {
                    compare = Some(PathBuf::from(it.next().ok_or("--compare needs a FILE")?))
                }
                "--rounds" => {
                    let n = it.next().ok_or("--rounds needs a number")?;
                    rounds = Some(
                        n.parse::<usize>()
                            .ok()
                            .filter(|&n| n > 0)
                            .ok_or(format!("--rounds: {n:?} is not a positive number"))?,
                    );
                }
                "--only" => {
                    let list = it.next().ok_or("--only needs a list")?;
                    let list: Vec<String> = list.split(',').map(str::to_string).collect();
                    if let Some(bad) = list.iter().find(|i| !LOCAL_IMPLS.contains(&i.as_str())) {
                        return Err(format!("--only: unknown implementation {bad:?}"));
                    }
                    only = Some(list);
                }
                "--list" => {
                    for w in WORKLOADS {
                        println!(
                            "{:<20} {}\n{:<20} sizes {:?}, quick {:?}",
                            w.name,
                            w.about,
                            "",
                            workloads::sizes(w.name, false, cores()),
                            workloads::sizes(w.name, true, cores())
                        );
                    }
                    return Ok(None);
                }
                "-h" | "--help" | "help" => return Ok(None),
                s if s.starts_with('-') => return Err(format!("unknown option {s}")),
                s => names.push(s.to_string()),
            }
        }
        let workloads = if names.is_empty() || names.iter().any(|n| n == "all") {
            WORKLOADS.iter().collect()
        } else {
            names
                .iter()
                .map(|n| workloads::find(n).ok_or(format!("unknown workload {n:?} (see --list)")))
                .collect::<Result<_, _>>()?
        };
        Ok(Some(Options {
            workloads,
            quick,
            json,
            rounds: rounds.unwrap_or(if quick { 1 } else { 5 }),
            only,
            compare,
            allow_busy,
        }))
    }

    fn wants(&self, imp: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|i| imp.starts_with(i.as_str())))
    }
}

/// The number of cores (sizes in-process by it, as protoactor-go's benchmark does).
pub fn cores() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// How the protoactor-go program can be run, or why it cannot.
enum GoProgram {
    Ready(PathBuf),
    Missing(String),
}

/// The Go module under `bench/go`, found from this crate's source directory.
fn go_module_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/go")
}

/// Builds the Go program next to this binary (in the cargo target dir).
fn build_go() -> GoProgram {
    let out = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("protoactor-bench-go")))
        .unwrap_or_else(|| PathBuf::from("protoactor-bench-go"));
    eprintln!("building the protoactor-go program (go build)...");
    match Command::new("go")
        .args(["build", "-buildvcs=false", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(go_module_dir())
        .status()
    {
        Ok(s) if s.success() => GoProgram::Ready(out),
        Ok(s) => GoProgram::Missing(format!("go build failed ({s})")),
        Err(e) => GoProgram::Missing(format!("cannot run go: {e}")),
    }
}

/// Runs the benchmark and prints the table.
pub fn run(opts: &Options) -> ExitCode {
    // The machine before anything of ours runs (the Go build included).
    let start = MachineState::sample();
    eprintln!("machine at the start: {start}");
    if let Some(refusal) = refuse_busy(opts, &start) {
        eprintln!("protoactor-bench: {refusal}");
        return ExitCode::from(2);
    }
    let go = if opts.wants("protoactor-go") {
        build_go()
    } else {
        GoProgram::Missing("not selected (--only)".into())
    };
    if let GoProgram::Missing(why) = &go {
        if std::env::var("PROTOACTOR_INTEROP").as_deref() == Ok("required") {
            eprintln!("protoactor-bench: PROTOACTOR_INTEROP=required but protoactor-go is unavailable: {why}");
            return ExitCode::FAILURE;
        }
        eprintln!("protoactor-bench: WARNING: protoactor-go rows skipped: {why}");
    }
    let me = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("protoactor-bench: cannot find my own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut report = Report::new();
    if let Some(path) = &opts.compare {
        // Read now: `--json` may name the same file.
        let read = std::fs::read_to_string(path).map_err(|e| e.to_string());
        if let Err(e) = read.and_then(|j| report.compare_with(&j)) {
            eprintln!("protoactor-bench: --compare {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if start.is_busy() {
        eprintln!(
            "protoactor-bench: WARNING: busy machine (1-minute load above {BUSY_LOAD:.1}): \
             every row is marked busy"
        );
    }
    report.machine(false, start);
    let started = Instant::now();
    for (wi, w) in opts.workloads.iter().enumerate() {
        let sizes = workloads::sizes(w.name, opts.quick, cores());
        eprintln!(
            "[{}/{}] {} {:?} ({} rounds)",
            wi + 1,
            opts.workloads.len(),
            w.name,
            sizes,
            opts.rounds
        );
        if w.name == "persistence" && std::env::var_os("PROTOACTOR_POSTGRES_URL").is_none() {
            eprintln!(
                "  no postgres rows: PROTOACTOR_POSTGRES_URL is not set \
                 (`bash scripts/start-postgres.sh` starts a server and prints one)"
            );
        }
        let before = Snapshot::now();
        match w.shape {
            Shape::Local => run_local(opts, w, &sizes, &go, &me, &mut report),
            Shape::Remote => run_remote(opts, w, &sizes, &go, &mut report),
            Shape::Cluster => run_cluster(opts, w, &sizes, &go, &mut report),
        }
        if let Some(u) = Usage::between(&before, &Snapshot::now(), TICKS_PER_S) {
            let mark = u
                .busy_reason()
                .map_or(String::new(), |_| " (busy: its rows are marked)".into());
            eprintln!("  during {}: {u}{mark}", w.name);
            report.workload_usage(w.name, u);
        }
    }
    let end = MachineState::sample();
    eprintln!(
        "done in {:.1} s; machine at the end: {end}",
        started.elapsed().as_secs_f64()
    );
    report.machine(true, end);
    let table = report.table(&opts.workloads);
    println!("{table}");
    if let Some(path) = &opts.json {
        if let Err(e) = std::fs::write(path, report.json(&opts.workloads)) {
            eprintln!("protoactor-bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {}", path.display());
    }
    if report.failures() > 0 {
        eprintln!("protoactor-bench: {} run(s) failed", report.failures());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Why a run that would write a results file must not start: the 1-minute load average
/// above [`BUSY_LOAD`] without `--allow-busy` (a busy run's figures measure the machine;
/// the published table must come from a quiet one).
fn refuse_busy(opts: &Options, start: &MachineState) -> Option<String> {
    let json = opts.json.as_ref()?;
    (start.is_busy() && !opts.allow_busy).then(|| {
        format!(
            "refusing to write {}: load average (1, 5, 15 min) {}, the 1-minute figure above \
             {BUSY_LOAD:.1}: wait for a quiet machine, or pass --allow-busy (every row is then \
             marked busy)",
            json.display(),
            start.load_average
        )
    })
}

fn run_local(
    opts: &Options,
    w: &Workload,
    sizes: &[u64],
    go: &GoProgram,
    me: &Path,
    report: &mut Report,
) {
    let impls: Vec<&str> = LOCAL_IMPLS
        .iter()
        .copied()
        .filter(|i| opts.wants(i) && runs_locally(i, w))
        .collect();
    let args: Vec<String> = sizes.iter().map(u64::to_string).collect();
    for imp in &impls {
        report.declare(w, imp);
        if *imp == "protoactor-go" {
            if let GoProgram::Missing(why) = go {
                report.skip(w, imp, &format!("skipped: {why}"));
            }
        }
    }
    for round in 0..opts.rounds {
        // Alternate who goes first, so warm-up and thermal effects spread evenly.
        for k in 0..impls.len() {
            let imp = impls[(k + round) % impls.len()];
            let mut cmd = if imp == "protoactor-go" {
                let GoProgram::Ready(bin) = go else { continue };
                let mut c = Command::new(bin);
                c.arg(w.name);
                c
            } else {
                let mut c = Command::new(me);
                c.args(["__run", imp, w.name]);
                c
            };
            cmd.args(&args);
            let sample = run_child(cmd, timeout(opts));
            progress(w.name, round, opts.rounds, imp, &sample);
            report.add(w, imp, round, sample);
        }
    }
}

fn timeout(opts: &Options) -> Duration {
    Duration::from_secs(if opts.quick { 60 } else { 300 })
}

fn progress(workload: &str, round: usize, rounds: usize, imp: &str, s: &Sample) {
    let what = match s {
        Sample::Ok {
            metrics,
            rss_kb,
            notes,
        } => metrics
            .iter()
            .map(|m| format!("{} {:.1} {}", m.name, m.value, m.unit))
            .chain(std::iter::once(format!("peak RSS {} MiB", rss_kb / 1024)))
            .chain(notes.iter().cloned())
            .collect::<Vec<_>>()
            .join(", "),
        Sample::Failed(e) => format!("FAILED: {e}"),
    };
    eprintln!("  {workload} round {}/{rounds} {imp}: {what}", round + 1);
}

/// Runs one child to completion (killing it after `limit`) and parses its result lines.
fn run_child(mut cmd: Command, limit: Duration) -> Sample {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Sample::Failed(format!("cannot start: {e}")),
    };
    let out = read_in_background(child.stdout.take());
    let err = read_in_background(child.stderr.take());
    let status = wait_or_kill(&mut child, limit);
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    match status {
        Err(e) => Sample::Failed(e),
        Ok(s) if !s.success() => Sample::Failed(format!(
            "exit {s}: {}",
            err.lines().last().unwrap_or("no message")
        )),
        Ok(_) => parse_output(&out),
    }
}

fn read_in_background<R: std::io::Read + Send + 'static>(
    r: Option<R>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut r) = r {
            let _ = r.read_to_string(&mut s);
        }
        s
    })
}

fn wait_or_kill(child: &mut Child, limit: Duration) -> Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Ok(s),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} s", limit.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("wait failed: {e}")),
        }
    }
}

/// Parses `RESULT name value unit`, `RSS kb` and `NOTE text` lines.
pub fn parse_output(out: &str) -> Sample {
    let mut metrics = Vec::new();
    let mut rss_kb = 0;
    let mut notes = Vec::new();
    for line in out.lines() {
        if let Some(note) = line.strip_prefix("NOTE ") {
            notes.push(note.trim().to_string());
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["RESULT", name, value, unit] => match value.parse::<f64>() {
                Ok(v) if v.is_finite() => metrics.push(Metric::new(name, v, unit)),
                _ => return Sample::Failed(format!("bad result line {line:?}")),
            },
            ["RSS", kb] => rss_kb = kb.parse().unwrap_or(0),
            _ => {}
        }
    }
    if metrics.is_empty() {
        return Sample::Failed("no RESULT line in the output".into());
    }
    Sample::Ok {
        metrics,
        rss_kb,
        notes,
    }
}

// ---------------------------------------------------------------------- remote

/// A node program of the remote benchmark.
#[derive(Clone, Copy, PartialEq)]
enum Node {
    Rust,
    Go,
}

/// The `WIRE` argument of the protoactor-rs nodes for a pair: protoactor-go @latest is the
/// 2024 protocol, so a pair with a Go node writes `WireVariant::Legacy2024`.
fn wire_for(client: Node, server: Node) -> &'static str {
    if client == Node::Rust && server == Node::Rust {
        "current"
    } else {
        "legacy2024"
    }
}

/// This binary, which runs the protoactor-rs nodes as hidden subcommands.
fn rust_node(subcommand: &str) -> Result<Command, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))?;
    let mut c = Command::new(me);
    c.arg(subcommand);
    Ok(c)
}

/// The command that runs node 2 (the echo server) on `port`, or why there is none.
fn server_command(node: Node, go: &GoProgram, port: u16, wire: &str) -> Result<Command, String> {
    match (node, go) {
        (Node::Go, GoProgram::Ready(bin)) => {
            let mut c = Command::new(bin);
            c.args(["remote-server", &port.to_string()]);
            Ok(c)
        }
        (Node::Go, GoProgram::Missing(why)) => Err(format!("skipped: {why}")),
        (Node::Rust, _) => {
            let mut c = rust_node("__remote-server")?;
            c.args([&port.to_string(), wire]);
            Ok(c)
        }
    }
}

/// The command that runs node 1 (the client, which measures), or why there is none.
fn client_command(
    node: Node,
    go: &GoProgram,
    port: u16,
    peer: u16,
    n: u64,
    wire: &str,
) -> Result<Command, String> {
    let args = [port.to_string(), format!("127.0.0.1:{peer}"), n.to_string()];
    match (node, go) {
        (Node::Go, GoProgram::Ready(bin)) => {
            let mut c = Command::new(bin);
            c.arg("remote-client").args(args);
            Ok(c)
        }
        (Node::Go, GoProgram::Missing(why)) => Err(format!("skipped: {why}")),
        (Node::Rust, _) => {
            let mut c = rust_node("__remote-client")?;
            c.args(args).arg(wire);
            Ok(c)
        }
    }
}

fn run_remote(opts: &Options, w: &Workload, sizes: &[u64], go: &GoProgram, report: &mut Report) {
    let n = sizes[0];
    // (row label, client node, server node)
    let pairs = [
        ("protoactor-rs", Node::Rust, Node::Rust),
        ("protoactor-go", Node::Go, Node::Go),
        ("protoactor-rs→go", Node::Rust, Node::Go),
        ("go→protoactor-rs", Node::Go, Node::Rust),
    ];
    let selected: Vec<_> = pairs
        .iter()
        .filter(|(label, _, _)| {
            opts.wants(if label.contains("protoactor-rs") {
                "protoactor-rs"
            } else {
                "protoactor-go"
            })
        })
        .collect();
    let mut runnable = Vec::new();
    for &&(label, _, _) in &selected {
        report.declare(w, label);
    }
    for &&(label, client, server) in &selected {
        let wire = wire_for(client, server);
        let probe = server_command(server, go, 0, wire)
            .and_then(|_| client_command(client, go, 0, 0, n, wire));
        match probe {
            Ok(_) => runnable.push((label, client, server)),
            Err(why) => report.skip(w, label, &why),
        }
    }
    for round in 0..opts.rounds {
        for k in 0..runnable.len() {
            let (label, client, server) = runnable[(k + round) % runnable.len()];
            let sample = run_pair(client, server, go, n, timeout(opts));
            progress(w.name, round, opts.rounds, label, &sample);
            report.add(w, label, round, sample);
        }
    }
}

/// Starts node 2, waits for its READY line, runs node 1 and stops node 2 again.
fn run_pair(client: Node, server: Node, go: &GoProgram, n: u64, limit: Duration) -> Sample {
    let [sport, cport] = match free_ports() {
        Ok(ports) => ports,
        Err(e) => return Sample::Failed(e),
    };
    let wire = wire_for(client, server);
    let scmd = match server_command(server, go, sport, wire) {
        Ok(c) => c,
        Err(e) => return Sample::Failed(e),
    };
    match client_command(client, go, cport, sport, n, wire) {
        Ok(ccmd) => run_two(scmd, ccmd, limit),
        Err(e) => Sample::Failed(e),
    }
}

/// Starts node 2 (`scmd`), waits for its READY line, runs node 1 (`ccmd`, which measures)
/// and stops node 2 again by closing its stdin.
fn run_two(mut scmd: Command, ccmd: Command, limit: Duration) -> Sample {
    scmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut srv = match scmd.spawn() {
        Ok(c) => c,
        Err(e) => return Sample::Failed(format!("cannot start node 2: {e}")),
    };
    let ready = srv.stdout.take().map(|out| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            let ok = lines.any(|l| l.map(|l| l.trim() == "READY").unwrap_or(false));
            let _ = tx.send(ok);
            for _ in lines {} // keep draining so node 2 never blocks on a full pipe
        });
        rx
    });
    let up = ready
        .map(|rx| rx.recv_timeout(Duration::from_secs(20)).unwrap_or(false))
        .unwrap_or(false);
    let sample = if up {
        run_child(ccmd, limit)
    } else {
        Sample::Failed("node 2 did not print READY".into())
    };
    // Closing stdin asks node 2 to shut down; kill it if it lingers.
    if let Some(mut stdin) = srv.stdin.take() {
        let _ = stdin.flush();
    }
    if wait_or_kill(&mut srv, Duration::from_secs(5)).is_err() {
        eprintln!("  (node 2 had to be killed)");
    }
    sample
}

// ---------------------------------------------------------------------- cluster

/// The two member commands of one `cluster` or `pubsub` run of `imp` (member 2, then member
/// 1, the caller or publisher), with their automanaged health ports, or why there are none.
fn cluster_commands(
    workload: &str,
    imp: &str,
    go: &GoProgram,
    ports: [u16; 2],
    sizes: &[u64],
) -> Result<(Command, Command), String> {
    let peers = format!("127.0.0.1:{},127.0.0.1:{}", ports[0], ports[1]);
    let sizes: Vec<String> = sizes.iter().map(u64::to_string).collect();
    let (m, c) = match workload {
        "pubsub" => ("pubsub-member", "pubsub-publisher"),
        _ => ("cluster-member", "cluster-caller"),
    };
    let (mut member, mut caller) = match (imp, go) {
        ("protoactor-go", GoProgram::Ready(bin)) => {
            let (mut member, mut caller) = (Command::new(bin), Command::new(bin));
            member.arg(m);
            caller.arg(c);
            (member, caller)
        }
        ("protoactor-go", GoProgram::Missing(why)) => return Err(format!("skipped: {why}")),
        ("protoactor-rs", _) => (rust_node(&format!("__{m}"))?, rust_node(&format!("__{c}"))?),
        ("protoactor-rs-etcd-lookup", _) => {
            let lookup = crate::cluster_rs::etcd_lookup_setting()?;
            let (mut m, mut c) = (rust_node(&format!("__{m}"))?, rust_node(&format!("__{c}"))?);
            m.env(crate::cluster_rs::LOOKUP_ENV, &lookup);
            c.env(crate::cluster_rs::LOOKUP_ENV, &lookup);
            (m, c)
        }
        // The same members, member 1 serving the management API to a polling dashboard.
        ("protoactor-rs-management", _) => (
            rust_node("__cluster-member")?,
            rust_node("__cluster-caller-management")?,
        ),
        (other, _) => return Err(format!("{other} has no cluster")),
    };
    member.args([&ports[1].to_string(), &peers]);
    if workload == "pubsub" {
        // Member 2 hosts the subscribers: it needs their number.
        member.args(&sizes[..1]);
    }
    caller.args([&ports[0].to_string(), &peers]).args(sizes);
    Ok((member, caller))
}

fn run_cluster(opts: &Options, w: &Workload, sizes: &[u64], go: &GoProgram, report: &mut Report) {
    let impls: Vec<&str> = w
        .impls
        .unwrap_or(LOCAL_IMPLS)
        .iter()
        .copied()
        .filter(|i| opts.wants(i))
        .collect();
    let mut runnable = Vec::new();
    for imp in &impls {
        report.declare(w, imp);
        match cluster_commands(w.name, imp, go, [0, 0], sizes) {
            Ok(_) => runnable.push(*imp),
            Err(why) => report.skip(w, imp, &why),
        }
    }
    for round in 0..opts.rounds {
        for k in 0..runnable.len() {
            let imp = runnable[(k + round) % runnable.len()];
            let sample = match free_ports() {
                Ok(ports) => match cluster_commands(w.name, imp, go, ports, sizes) {
                    Ok((member, caller)) => run_two(member, caller, timeout(opts)),
                    Err(e) => Sample::Failed(e),
                },
                Err(e) => Sample::Failed(e),
            };
            progress(w.name, round, opts.rounds, imp, &sample);
            report.add(w, imp, round, sample);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn options() {
        let o = Options::parse(&args("skynet --quick --json x.json"))
            .unwrap()
            .unwrap();
        assert_eq!(o.workloads.len(), 1);
        assert!(o.quick);
        assert_eq!(o.rounds, 1);
        assert_eq!(o.json.as_deref(), Some(Path::new("x.json")));
        let all = Options::parse(&args("all --rounds 5")).unwrap().unwrap();
        assert_eq!(all.workloads.len(), WORKLOADS.len());
        assert_eq!(all.rounds, 5);
        assert!(Options::parse(&args("nope")).is_err());
        assert!(Options::parse(&args("--rounds 0")).is_err());
        assert!(Options::parse(&args("--only akka")).is_err());
        let only = Options::parse(&args("--only kameo")).unwrap().unwrap();
        assert!(only.wants("kameo") && !only.wants("actix"));
        // protoactor-rs brings its pinned variant along; the variant alone is accepted too.
        let rs = Options::parse(&args("--only protoactor-rs,actix"))
            .unwrap()
            .unwrap();
        assert!(rs.wants("protoactor-rs-pinned") && rs.wants("actix") && !rs.wants("kameo"));
        let pinned = Options::parse(&args("--only protoactor-rs-pinned"))
            .unwrap()
            .unwrap();
        assert!(pinned.wants("protoactor-rs-pinned") && !pinned.wants("protoactor-rs"));
        assert_eq!(only.rounds, 5);
        let cmp = Options::parse(&args("all --compare old.json"))
            .unwrap()
            .unwrap();
        assert_eq!(cmp.compare.as_deref(), Some(Path::new("old.json")));
        assert!(Options::parse(&args("--compare")).is_err());
        assert!(!cmp.allow_busy);
        assert!(
            Options::parse(&args("all --allow-busy"))
                .unwrap()
                .unwrap()
                .allow_busy
        );
    }

    #[test]
    fn a_busy_start_refuses_to_write_results_unless_allowed() {
        let at = |l: f64| MachineState {
            load_average: format!("{l:.2} 1.00 1.00"),
            load1: Some(l),
            usage: None,
        };
        let opts = |s: &str| Options::parse(&args(s)).unwrap().unwrap();
        let refused = refuse_busy(&opts("in-process --json r.json"), &at(1.5)).unwrap();
        assert!(refused.contains("refusing to write r.json"), "{refused}");
        assert!(refused.contains("1.50 1.00 1.00"), "{refused}");
        assert!(refuse_busy(&opts("in-process --json r.json"), &at(0.4)).is_none());
        assert!(refuse_busy(&opts("in-process --json r.json --allow-busy"), &at(9.0)).is_none());
        // Without a results file nothing is written: the run goes ahead, its rows marked.
        assert!(refuse_busy(&opts("in-process"), &at(9.0)).is_none());
    }

    #[test]
    fn the_pinned_variant_runs_only_the_single_chain_rows() {
        for w in WORKLOADS.iter().filter(|w| w.shape == Shape::Local) {
            let pinned = runs_locally("protoactor-rs-pinned", w);
            assert_eq!(pinned, PINNED_WORKLOADS.contains(&w.name), "{}", w.name);
            if w.impls.is_none() {
                assert!(runs_locally("protoactor-rs", w), "{}", w.name);
            }
        }
        assert!(runs_locally(
            "protoactor-rs-pinned",
            workloads::find("savina-ping-pong").unwrap()
        ));
        for name in PINNED_WORKLOADS {
            assert!(workloads::find(name).is_some(), "{name}");
        }
    }

    #[test]
    fn the_mimalloc_variant_runs_wherever_protoactor_rs_does() {
        for w in WORKLOADS.iter().filter(|w| w.shape == Shape::Local) {
            assert_eq!(
                runs_locally("protoactor-rs-mimalloc", w),
                runs_locally("protoactor-rs", w),
                "{}",
                w.name
            );
        }
        assert_eq!(
            LOCAL_IMPLS.contains(&"protoactor-rs-mimalloc"),
            cfg!(feature = "mimalloc")
        );
    }

    #[test]
    fn parses_child_output() {
        let out =
            "noise\nRESULT spawn 12.5 ms\nNOTE topic on member 2\nRESULT spawn:x 3 B\nRSS 2048\n";
        match parse_output(out) {
            Sample::Ok {
                metrics,
                rss_kb,
                notes,
            } => {
                assert_eq!(metrics.len(), 2);
                assert_eq!(metrics[0].value, 12.5);
                assert_eq!(rss_kb, 2048);
                assert_eq!(notes, ["topic on member 2"]);
            }
            Sample::Failed(e) => panic!("{e}"),
        }
        assert!(matches!(parse_output("RSS 1\n"), Sample::Failed(_)));
        assert!(matches!(
            parse_output("RESULT a NaN ms\n"),
            Sample::Failed(_)
        ));
    }
}
