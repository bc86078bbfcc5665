//! Conservation of money across crashes: the bank example's persistent `Account` grains on
//! two member processes (this test binary re-run as children, automanaged provider), their
//! journals in one SQLite file. A teller in the test process (a member hosting nothing)
//! moves money between accounts while a member is killed with SIGKILL mid-transfer and
//! later started again, five times; after every step the balances the grains report add up
//! to exactly the opening total. Accounts move to the survivor and back; an activation left
//! behind on the survivor is fenced by its journal (see `persistent`), never served stale.
//!
//! Also runs the `bank` example binary (`cargo test` builds it).

#[path = "../examples/bank/account.rs"]
mod account;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use account::{account_kind, bank, Dice, Teller};
use protoactor::prelude::*;
use protoactor_cluster::automanaged::{AutoManagedConfig, AutoManagedProvider};
use protoactor_cluster::persistent::GrainStore;
use protoactor_cluster::{Cluster, ClusterConfig, DistHashIdentityLookup};
use protoactor_persistence::{Provider, SqliteProvider};
use protoactor_remote::{Remote, RemoteConfig, WireVariant};
use protoactor_testkit::paths::example_binary;
use protoactor_testkit::ports::free_port;
use protoactor_testkit::process::{protocol_line, say, test_child, ChildProcess};

const CHILD_ENV: &str = "BANK_MEMBER_CHILD";
const CLUSTER: &str = "bank-processes";
const ACCOUNTS: usize = 8;
const OPENING: i64 = 1_000;
/// Longest wait for a member to start or for a topology change (generous: a loaded machine).
const TOPOLOGY: Duration = Duration::from_secs(90);

fn start_node(auto_port: u16, peers: &[String], db: Option<&Path>) -> (ActorSystem, Cluster) {
    let system = ActorSystem::new();
    let remote = Remote::start(
        &system,
        RemoteConfig::new("127.0.0.1", 0).with_wire_variant(WireVariant::Legacy2024),
    )
    .expect("remote starts");
    bank::register_types(remote.serialization());
    let provider = AutoManagedProvider::new(
        AutoManagedConfig::new(auto_port, peers.to_vec())
            .with_bind_host("127.0.0.1")
            .with_refresh(Duration::from_millis(500)),
    );
    let mut config = ClusterConfig::new(CLUSTER, provider, DistHashIdentityLookup::new());
    if let Some(db) = db {
        let store: Arc<dyn Provider> = Arc::new(SqliteProvider::open(db).expect("sqlite"));
        config = config.with_kind(account_kind(GrainStore::new(store).snapshot_every(10)));
    }
    let cluster = Cluster::start_member(&system, &remote, config).expect("member starts");
    (system, cluster)
}

/// Child mode of this binary: one bank member, until killed or its stdin closes.
#[test]
fn bank_member_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let var = |k: &str| std::env::var(k).expect(k);
    let peers: Vec<String> = var("BANK_PEERS").split(',').map(String::from).collect();
    let port = var("BANK_AUTO_PORT").parse().expect("port");
    let (_system, cluster) = start_node(port, &peers, Some(Path::new(&var("BANK_DB"))));
    say(&format!("READY {}", cluster.address()));
    // Until the parent closes stdin (or kills the process).
    for _ in std::io::stdin().lock().lines() {}
    cluster.shutdown_blocking(true);
}

struct Member {
    label: &'static str,
    auto_port: u16,
    address: String,
    /// Killed (SIGKILL) when dropped.
    process: ChildProcess,
}

fn spawn_member(label: &'static str, auto_port: u16, peers: &[String], db: &Path) -> Member {
    let mut cmd = test_child("bank_member_child");
    cmd.env(CHILD_ENV, "1")
        .env("BANK_AUTO_PORT", auto_port.to_string())
        .env("BANK_PEERS", peers.join(","))
        .env("BANK_DB", db);
    let mut process = ChildProcess::spawn(label, cmd, |l| protocol_line(l, &["READY"]));
    let ready = process.next_line("READY", TOPOLOGY);
    let address = ready.trim_start_matches("READY").trim().to_string();
    Member {
        label,
        auto_port,
        address,
        process,
    }
}

/// Waits until the teller's node sees exactly `addresses` hosting accounts.
fn await_hosts(cluster: &Cluster, addresses: &[&str]) {
    let deadline = Instant::now() + TOPOLOGY;
    loop {
        let mut hosts: Vec<String> = cluster
            .member_list()
            .members()
            .into_iter()
            .filter(|m| m.has_kind(bank::ACCOUNT_KIND))
            .map(|m| m.address())
            .collect();
        hosts.sort();
        let mut want: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
        want.sort();
        if hosts == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "hosts {hosts:?}, expected {want:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn transfers(teller: &mut Teller, dice: &mut Dice, accounts: &[String], n: usize) {
    for _ in 0..n {
        let from = dice.below(ACCOUNTS as u64) as usize;
        let to = (from + 1 + dice.below(ACCOUNTS as u64 - 1) as usize) % ACCOUNTS;
        let amount = 1 + dice.below(400) as i64;
        teller
            .transfer(&accounts[from], &accounts[to], amount)
            .unwrap_or_else(|e| panic!("transfer {from} -> {to}: {e}"));
    }
}

fn assert_total(teller: &mut Teller, accounts: &[String], db: &Path, step: &str) {
    let mut total = 0;
    for a in accounts {
        let reported = teller.balance(a).expect("balance");
        // What the grain answered is what its journal says (no stale activation answered).
        assert_eq!(
            (reported.amount, reported.events),
            journal_balance(db, a),
            "after {step}: {a}"
        );
        total += reported.amount;
    }
    assert_eq!(
        total,
        OPENING * ACCOUNTS as i64,
        "after {step}: the balances add up to {total}"
    );
    eprintln!(
        "after {step}: total {total}, {} retried calls so far",
        teller.retries
    );
}

/// The balance and event count of `account` from its journal in the SQLite file.
fn journal_balance(db: &Path, account: &str) -> (i64, u64) {
    use protoactor_cluster::persistent::{journal_name, PersistentMessage};
    let store = SqliteProvider::open(db).expect("sqlite");
    let name = journal_name(bank::ACCOUNT_KIND, account);
    let events = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(store.get_events(&name, 0, usize::MAX))
        .expect("events");
    let mut balance = 0;
    for e in &events {
        match account::AccountEvent::decode_payload(&e.record.type_name, &e.record.payload) {
            Ok(account::AccountEvent::Deposited(d)) => balance += d.amount,
            Ok(account::AccountEvent::Withdrawn(w)) => balance -= w.amount,
            Err(e) => panic!("{name}: {e}"),
        }
    }
    (balance, events.len() as u64)
}

fn temp_db() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("protoactor-bank-proc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bank.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

#[test]
fn money_is_conserved_while_members_are_killed_and_restarted() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let db = temp_db();
    let ports = [free_port(), free_port(), free_port()];
    let peers: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut members = [
        spawn_member("a", ports[0], &peers, &db),
        spawn_member("b", ports[1], &peers, &db),
    ];
    let (system, cluster) = start_node(ports[2], &peers, None);
    await_hosts(&cluster, &[&members[0].address, &members[1].address]);

    let accounts: Vec<String> = (0..ACCOUNTS).map(|i| format!("acct-{i}")).collect();
    let mut teller = Teller::new(&cluster, 0);
    teller.patience = TOPOLOGY;
    for a in &accounts {
        teller.deposit(a, OPENING).expect("opening deposit");
    }
    let mut dice = Dice::new(0x5eed);
    transfers(&mut teller, &mut dice, &accounts, 20);
    assert_total(&mut teller, &accounts, &db, "the first transfers");

    for round in 0..5 {
        let v = round % 2;
        let survivor = members[1 - v].address.clone();
        // SIGKILL while a transfer is in flight: `kill` runs as the next transfer starts.
        let pid = members[v].process.id().to_string();
        let killer = Command::new("kill")
            .args(["-9", &pid])
            .spawn()
            .expect("kill runs");
        transfers(&mut teller, &mut dice, &accounts, 15);
        members[v].process.wait_exit(TOPOLOGY);
        drop(killer);
        await_hosts(&cluster, &[&survivor]);
        transfers(&mut teller, &mut dice, &accounts, 10);
        let label = members[v].label;
        assert_total(
            &mut teller,
            &accounts,
            &db,
            &format!("round {round}: {label} killed"),
        );

        let auto_port = members[v].auto_port;
        members[v] = spawn_member(label, auto_port, &peers, &db);
        await_hosts(&cluster, &[&members[0].address, &members[1].address]);
        transfers(&mut teller, &mut dice, &accounts, 20);
        assert_total(
            &mut teller,
            &accounts,
            &db,
            &format!("round {round}: {label} restarted"),
        );
    }
    cluster.shutdown_blocking(true);
    system.shutdown();
    drop(members);
    let _ = std::fs::remove_dir_all(db.parent().expect("dir"));
}

#[test]
fn the_bank_example_keeps_its_total() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let out = Command::new(example_binary("bank", "protoactor-cluster"))
        .arg("120")
        .stderr(Stdio::inherit())
        .output()
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bank failed: {}\n{stdout}",
        out.status
    );
    assert!(stdout.contains("member b stopped"), "{stdout}");
    assert!(stdout.contains("member b started again"), "{stdout}");
    assert!(stdout.contains("total: 10000 (expected 10000)"), "{stdout}");
}
