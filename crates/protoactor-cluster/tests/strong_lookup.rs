//! The strongly consistent identity lookup on etcd (`etcd_lookup`, feature `etcd`): a virtual
//! actor is never two actors. Two Rust member processes (three for the rolling restart) on
//! the etcd provider and the etcd lookup, each grain logging its life (start, last message
//! served, stop) to its member's file (the duplicate-activation detector,
//! `protoactor_testkit::cluster::activations`), and a client in this process calling 200
//! identities without pause (8 calls in flight, 1 s per attempt, 5 s per call;
//! `protoactor_testkit::cluster::load`). Each test has its own etcd server
//! (`scripts/start-etcd.sh` on free ports).
//!
//! * a member frozen (SIGSTOP) longer than its lease: the other member takes its
//!   identities over; after SIGCONT its old activations never answer again, and no two
//!   activations of an identity ever served at once;
//! * kill -9 of a member, three times (restarted each time): no overlap, calls recover;
//! * a graceful rolling restart of three members (each stopped, a new one started): no
//!   call fails, no overlap;
//! * etcd stopped while calling: the activations stop once their lease can no longer be
//!   renewed (no new activation starts while etcd is down); etcd back, calls recover, no
//!   overlap.
//!
//! Every wait is for an observable event (answers, log lines, topology) with a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use protoactor_cluster::etcd::{EtcdConfig, EtcdProvider};
use protoactor_cluster::etcd_lookup::{EtcdIdentityLookup, EtcdLookupConfig};
use protoactor_cluster::CallOptions;
use protoactor_testkit::cluster::activations::{now_us, overlaps, read_lives, Life};
use protoactor_testkit::cluster::load::Load;
use protoactor_testkit::cluster::*;
use protoactor_testkit::paths::scratch_dir;
use protoactor_testkit::services::ScriptServer;
use protoactor_testkit::wait::poll_until;

protoactor_testkit::rust_member_child_test!();

const KIND: &str = "hello";
const IDENTITIES: usize = 200;
const WORKERS: usize = 8;
/// Longest wait for any event (generous: a loaded machine; the lease TTL is 6 s).
const EVENT: Duration = Duration::from_secs(90);

// ------------------------------------------------------------------ the load

/// The client's calls: every identity without pause, 8 in flight, 1 s per attempt, 5 s per
/// call.
fn start_load(caller: &Node) -> Load {
    let opts = CallOptions::default()
        .with_timeout(Duration::from_secs(5))
        .with_attempt_timeout(Duration::from_secs(1));
    Load::start(caller, KIND, "s-", IDENTITIES, WORKERS, opts, EVENT)
}

// ------------------------------------------------------------------ members

struct Setup {
    cluster: String,
    endpoint: String,
    dir: PathBuf,
    logs: Vec<PathBuf>,
}

impl Setup {
    fn new(name: &str, endpoint: &str) -> Setup {
        let cluster = format!("{name}-{}", std::process::id());
        let dir = scratch_dir().join(format!("strong-{cluster}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Setup {
            cluster,
            endpoint: endpoint.to_string(),
            dir,
            logs: Vec::new(),
        }
    }

    fn member(&mut self, label: &str) -> MemberProcess {
        let log = self.dir.join(format!("{label}.log"));
        self.logs.push(log.clone());
        let provider = Provider::Etcd {
            endpoints: self.endpoint.clone(),
        };
        let log = log.display().to_string();
        MemberProcess::rust_with_env(
            label,
            &self.cluster,
            &provider,
            &[KIND],
            &[(ENV_LOOKUP, "etcd"), (ENV_ACTIVATION_LOG, log.as_str())],
        )
    }

    /// A client in this process on the etcd provider and the etcd lookup.
    fn caller(&self) -> Node {
        let ep = self.endpoint.clone();
        NodeBuilder::new(&self.cluster)
            .with_identity_lookup(move || {
                EtcdIdentityLookup::new(EtcdLookupConfig::new([ep.clone()]))
            })
            .client(EtcdProvider::new(
                EtcdConfig::new([self.endpoint.clone()])
                    .with_retry_interval(Duration::from_millis(200)),
            ))
    }

    /// The member id of `m` (the etcd provider's `<cluster>@<system id>`).
    fn id(&self, m: &MemberProcess) -> String {
        format!("{}@{}", self.cluster, m.id)
    }

    fn lives(&self) -> Vec<Life> {
        read_lives(&self.logs)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn await_in_view(caller: &Node, ids: &[String], present: bool) {
    let ids = ids.to_vec();
    let ok = caller
        .system
        .runtime()
        .block_on(caller.await_ids(&ids, present, EVENT));
    assert!(ok, "the caller never saw {ids:?} present={present}");
}

fn assert_no_overlap(setup: &Setup, killed: &BTreeMap<String, u64>) -> usize {
    let lives = setup.lives();
    let o = overlaps(&lives, killed);
    assert!(
        o.is_empty(),
        "{} pairs of activations served at once, e.g. {:?}",
        o.len(),
        &o[..o.len().min(5)]
    );
    lives.len()
}

fn shutdown(caller: Node) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(caller.stop(true));
}

// ------------------------------------------------------------------ tests

/// SIGSTOP of a member longer than its lease while the client keeps calling: the other
/// member takes the frozen member's identities over (only once etcd dropped their keys);
/// after SIGCONT none of the old activations answers again (each stops at its next
/// message or at the placement actor's next check, having served nothing since the
/// freeze), and no two activations of an identity served at once.
#[test]
fn a_frozen_member_never_answers_again_and_no_identity_is_two_actors() {
    let Some((_etcd, endpoint)) = private_etcd() else {
        return;
    };
    let mut setup = Setup::new("strong-freeze", &endpoint);
    let mut a = setup.member("a");
    let b = setup.member("b");
    let caller = setup.caller();
    await_in_view(&caller, &[setup.id(&a), setup.id(&b)], true);
    let load = start_load(&caller);
    load.await_round("every identity answers", 0);
    eprintln!("strong lookup, warm-up: {}", load.take_failures());

    let t_freeze = now_us();
    let on_a = load.seen.lock().living_at(&a.address, t_freeze);
    assert!(!on_a.is_empty(), "a hosts some identities");
    let old: BTreeSet<String> = {
        let s = load.seen.lock();
        on_a.iter()
            .filter_map(|id| s.runs[id].last().map(|r| r.pid.clone()))
            .collect()
    };
    a.freeze();
    // From here on a cannot do anything until SIGCONT.
    let t_frozen = now_us();
    // Taken over: every identity a hosted answers from b (etcd expired a's lease first).
    let moved_after_ms =
        load.await_moved("b takes a's identities over", &on_a, t_freeze, &a.address);
    eprintln!(
        "strong lookup, freeze: {} identities moved, the last {moved_after_ms} ms after SIGSTOP; {}",
        on_a.len(),
        load.take_failures()
    );
    let t_thaw = now_us();
    a.thaw();
    // After SIGCONT every old activation of a stops, having served nothing since the freeze.
    let a_address = a.address.clone();
    let stopped = poll_until("a's old activations stop after SIGCONT", EVENT, || {
        let lives: Vec<Life> = setup
            .lives()
            .into_iter()
            .filter(|l| l.address == a_address && l.start < t_freeze)
            .collect();
        lives.iter().all(|l| l.stop.is_some()).then_some(lives)
    });
    for l in &stopped {
        let last = l.last.unwrap_or(0);
        assert!(
            last < t_frozen,
            "{}|{} served a message {} µs after the freeze",
            l.identity,
            l.pid,
            last.saturating_sub(t_frozen)
        );
    }
    // a is a member again (new provider and lookup leases); calls go on everywhere.
    await_in_view(&caller, &[setup.id(&a), setup.id(&b)], true);
    let t_back = now_us();
    load.await_round("every identity answers after the thaw", t_back);
    let seen = load.stop();
    let stale: Vec<String> = seen
        .runs
        .iter()
        .flat_map(|(id, rs)| rs.iter().map(move |r| (id, r)))
        .filter(|(_, r)| r.address == a_address && old.contains(&r.pid) && r.last >= t_thaw)
        .map(|(id, r)| format!("{id}: {}|{}", r.address, r.pid))
        .collect();
    assert!(
        stale.is_empty(),
        "old activations answered after SIGCONT: {stale:?}"
    );
    let lives = assert_no_overlap(&setup, &BTreeMap::new());
    eprintln!(
        "strong lookup, freeze: {} activations in the logs, {} of a's old ones stopped after SIGCONT having served nothing since the freeze, 0 overlaps",
        lives,
        stopped.len()
    );
    shutdown(caller);
    drop((a, b));
}

/// kill -9 of the member hosting the identities, three times, the killed member restarted
/// each time (a new member): the identities answer again from the survivor once the
/// killed member's lease expired, and no two activations ever served at once (a killed
/// member's activations end at the kill).
#[test]
fn kill_9_in_a_loop_leaves_no_overlap_and_calls_recover() {
    let Some((_etcd, endpoint)) = private_etcd() else {
        return;
    };
    let mut setup = Setup::new("strong-kill", &endpoint);
    let mut members = vec![setup.member("a0"), setup.member("b0")];
    let caller = setup.caller();
    await_in_view(
        &caller,
        &[setup.id(&members[0]), setup.id(&members[1])],
        true,
    );
    let load = start_load(&caller);
    load.await_round("every identity answers", 0);
    let mut killed = BTreeMap::new();
    for round in 0..3 {
        let v = round % 2;
        let (address, id) = (members[v].address.clone(), setup.id(&members[v]));
        let t_kill = now_us();
        let hosted = load.seen.lock().living_at(&address, t_kill);
        members[v].kill();
        killed.insert(address.clone(), now_us());
        let recovered_ms = load.await_moved(
            "the killed member's identities answer from the survivor",
            &hosted,
            t_kill,
            &address,
        );
        eprintln!(
            "strong lookup, kill -9 round {round}: {} identities answered again from the survivor within {recovered_ms} ms; {}",
            hosted.len(),
            load.take_failures()
        );
        await_in_view(&caller, &[id], false);
        let label = format!("{}{}", if v == 0 { "a" } else { "b" }, round + 1);
        members[v] = setup.member(&label);
        await_in_view(
            &caller,
            &[setup.id(&members[0]), setup.id(&members[1])],
            true,
        );
        load.await_round("every identity answers after the restart", now_us());
    }
    load.stop();
    let lives = assert_no_overlap(&setup, &killed);
    eprintln!("strong lookup, kill -9 loop: {lives} activations in the logs, 0 overlaps");
    shutdown(caller);
    drop(members);
}

/// etcd stopped while calling: no lease can be renewed, so every activation stops once its
/// lease's local deadline passed (no new one can start meanwhile; calls fail); etcd back
/// (same data), the members take new leases and every identity answers again, and no two
/// activations of an identity served at once.
#[test]
fn an_etcd_restart_fences_the_activations_and_calls_recover_without_overlap() {
    let Some((etcd, endpoint)) = private_etcd() else {
        return;
    };
    let setup = {
        let mut s = Setup::new("strong-etcd", &endpoint);
        let a = s.member("a");
        let b = s.member("b");
        (s, a, b)
    };
    let (setup, a, b) = setup;
    let caller = setup.caller();
    await_in_view(&caller, &[setup.id(&a), setup.id(&b)], true);
    let load = start_load(&caller);
    load.await_round("every identity answers", 0);
    let t_down = now_us();
    etcd.stop();
    let fenced = poll_until("every activation stops while etcd is down", EVENT, || {
        let lives = setup.lives();
        (!lives.is_empty() && lives.iter().all(|l| l.stop.is_some())).then_some(lives)
    });
    let served_ms = fenced
        .iter()
        .filter_map(|l| l.last)
        .max()
        .unwrap_or(0)
        .saturating_sub(t_down)
        / 1000;
    eprintln!(
        "strong lookup, etcd down: {} activations kept serving up to {served_ms} ms, then stopped; {}",
        fenced.len(),
        load.take_failures()
    );
    let t_up = now_us();
    etcd.start();
    load.await_round("every identity answers after etcd is back", t_up);
    eprintln!(
        "strong lookup, etcd back: every identity answered again within {} ms; {}",
        (now_us() - t_up) / 1000,
        load.take_failures()
    );
    load.stop();
    let lives = assert_no_overlap(&setup, &BTreeMap::new());
    eprintln!("strong lookup, etcd restart: {lives} activations in the logs, 0 overlaps");
    shutdown(caller);
    drop((a, b));
}

/// A graceful rolling restart of three members while the client keeps calling: each member
/// in turn stops gracefully (its grains stop, then it revokes its lease and leaves) and a new
/// member takes its place. No call fails, its identities answer again from the others, and
/// no two activations of an identity ever served at once. Prints, per step, the failed calls and
/// the time from the stop to the last moved identity answering again.
#[test]
fn a_graceful_rolling_restart_leaves_no_overlap_and_calls_recover() {
    let Some((_etcd, endpoint)) = private_etcd() else {
        return;
    };
    let mut setup = Setup::new("strong-roll", &endpoint);
    let mut members: Vec<MemberProcess> = ["a0", "b0", "c0"]
        .into_iter()
        .map(|l| setup.member(l))
        .collect();
    let caller = setup.caller();
    let ids = |setup: &Setup, ms: &[MemberProcess]| -> Vec<String> {
        ms.iter().map(|m| setup.id(m)).collect()
    };
    await_in_view(&caller, &ids(&setup, &members), true);
    let load = start_load(&caller);
    load.await_round("every identity answers", 0);
    eprintln!(
        "strong lookup, rolling restart warm-up: {}",
        load.take_failures()
    );
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let old = members.remove(i);
        let (address, id) = (old.address.clone(), setup.id(&old));
        let t_stop = now_us();
        let hosted = load.seen.lock().living_at(&address, t_stop);
        let status = old.stop();
        assert!(status.success(), "{name}0 exited with {status}");
        let stop_ms = (now_us() - t_stop) / 1000;
        let moved_ms = load.await_moved(
            "the stopped member's identities answer from the others",
            &hosted,
            t_stop,
            &address,
        );
        await_in_view(&caller, &[id], false);
        let failures = load.take_failures();
        eprintln!(
            "strong lookup, rolling restart, graceful stop of {name}0: {} identities answered again from the others within {moved_ms} ms (the stop took {stop_ms} ms); {failures}",
            hosted.len(),
        );
        assert!(
            failures.contains(" failed=0 "),
            "{name}0 stopped: {failures}"
        );
        members.insert(i, setup.member(&format!("{name}1")));
        await_in_view(&caller, &ids(&setup, &members), true);
        let t_joined = now_us();
        load.await_round("every identity answers after the join", t_joined);
        let failures = load.take_failures();
        eprintln!(
            "strong lookup, rolling restart, {name}1 joined: every identity answered within {} ms; {failures}",
            (now_us() - t_joined) / 1000,
        );
        assert!(
            failures.contains(" failed=0 "),
            "{name}1 joined: {failures}"
        );
    }
    load.stop();
    let lives = assert_no_overlap(&setup, &BTreeMap::new());
    eprintln!("strong lookup, rolling restart: {lives} activations in the logs, 0 overlaps");
    shutdown(caller);
    drop(members);
}

/// A private etcd (this test stops it, or must not see another test's keys), unless etcd is
/// not installed (skipped loudly; a failure under `PROTOACTOR_ETCD=required`).
fn private_etcd() -> Option<(ScriptServer, String)> {
    protoactor_testkit::services::etcd_endpoints()?;
    Some(ScriptServer::etcd())
}
