//! Conservation of money across crashes: the bank example's persistent `Account` grains on
//! two member processes (this test binary re-run as children, automanaged provider), their
//! journals in one SQLite file. A teller in the test process (a member hosting nothing)
//! moves money between accounts while a member is killed with SIGKILL mid-transfer and
//! later started again, five times; after every step the balances the grains report add up
//! to exactly the opening total. Accounts move to the survivor and back; an activation left
//! behind on the survivor is fenced by its journal (see `persistent`), never served stale.
//! Then a member frozen (SIGSTOP) mid-transfer past failure detection and resumed, and a
//! graceful rolling restart (each member stopped mid-transfer and replaced), the total
//! checked after each step. The same scenario steps run on the etcd
//! provider and the etcd identity lookup with a freeze (feature `etcd`).
//!
//! Also runs the `bank` binary (`cargo test` builds it).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bank::{account_kind, proto, Dice, Teller};
use protoactor::prelude::*;
use protoactor_cluster::automanaged::{AutoManagedConfig, AutoManagedProvider};
use protoactor_cluster::persistent::GrainStore;
use protoactor_cluster::{Cluster, ClusterConfig, DistHashIdentityLookup};
use protoactor_persistence::{Provider, SqliteProvider};
use protoactor_remote::{Remote, RemoteConfig, WireVariant};
use protoactor_testkit::ports::free_port;
use protoactor_testkit::process::{protocol_line, say, test_child, ChildProcess};

const CHILD_ENV: &str = "BANK_MEMBER_CHILD";
const CLUSTER: &str = "bank-processes";
const ACCOUNTS: usize = 8;
const OPENING: i64 = 1_000;
/// Longest wait for a member to start or for a topology change (generous: a loaded machine).
const TOPOLOGY: Duration = Duration::from_secs(90);

/// Where a node finds the other members and how it places grains.
#[derive(Clone)]
enum Membership {
    /// The automanaged provider (its health port, every member's) and disthash.
    Auto { port: u16, peers: Vec<String> },
    /// The etcd provider and the strongly consistent etcd identity lookup.
    #[cfg(feature = "etcd")]
    Etcd { endpoint: String },
}

fn start_node(membership: &Membership, db: Option<&Path>) -> (ActorSystem, Cluster) {
    let system = ActorSystem::new();
    let remote = Remote::start(
        &system,
        RemoteConfig::new("127.0.0.1", 0).with_wire_variant(WireVariant::Legacy2024),
    )
    .expect("remote starts");
    proto::register_types(remote.serialization());
    let mut config = match membership {
        Membership::Auto { port, peers } => {
            let provider = AutoManagedProvider::new(
                AutoManagedConfig::new(*port, peers.to_vec())
                    .with_bind_host("127.0.0.1")
                    .with_refresh(Duration::from_millis(500)),
            );
            ClusterConfig::new(CLUSTER, provider, DistHashIdentityLookup::new())
        }
        #[cfg(feature = "etcd")]
        Membership::Etcd { endpoint } => {
            use protoactor_cluster::etcd::{EtcdConfig, EtcdProvider};
            use protoactor_cluster::etcd_lookup::{EtcdIdentityLookup, EtcdLookupConfig};
            ClusterConfig::new(
                CLUSTER,
                EtcdProvider::new(
                    EtcdConfig::new([endpoint.as_str()])
                        .with_retry_interval(Duration::from_millis(200)),
                ),
                EtcdIdentityLookup::new(EtcdLookupConfig::new([endpoint.as_str()])),
            )
        }
    };
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
    let membership = match std::env::var("BANK_ETCD") {
        #[cfg(feature = "etcd")]
        Ok(endpoint) => Membership::Etcd { endpoint },
        _ => Membership::Auto {
            port: var("BANK_AUTO_PORT").parse().expect("port"),
            peers: var("BANK_PEERS").split(',').map(String::from).collect(),
        },
    };
    let (_system, cluster) = start_node(&membership, Some(Path::new(&var("BANK_DB"))));
    say(&format!("READY {}", cluster.address()));
    // Until the parent closes stdin (or kills the process).
    for _ in std::io::stdin().lock().lines() {}
    cluster.shutdown_blocking(true);
}

struct Member {
    label: String,
    membership: Membership,
    address: String,
    /// Killed (SIGKILL) when dropped.
    process: ChildProcess,
}

fn spawn_member(label: &str, membership: &Membership, db: &Path) -> Member {
    let mut cmd = test_child("bank_member_child");
    cmd.env(CHILD_ENV, "1").env("BANK_DB", db);
    match membership {
        Membership::Auto { port, peers } => cmd
            .env("BANK_AUTO_PORT", port.to_string())
            .env("BANK_PEERS", peers.join(",")),
        #[cfg(feature = "etcd")]
        Membership::Etcd { endpoint } => cmd.env("BANK_ETCD", endpoint),
    };
    let mut process = ChildProcess::spawn(label, cmd, |l| protocol_line(l, &["READY"]));
    let ready = process.next_line("READY", TOPOLOGY);
    let address = ready.trim_start_matches("READY").trim().to_string();
    Member {
        label: label.to_string(),
        membership: membership.clone(),
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
            .filter(|m| m.has_kind(proto::ACCOUNT_KIND))
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
    let name = journal_name(proto::ACCOUNT_KIND, account);
    let events = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(store.get_events(&name, 0, usize::MAX))
        .expect("events");
    let mut balance = 0;
    for e in &events {
        match bank::AccountEvent::decode_payload(&e.record.type_name, &e.record.payload) {
            Ok(bank::AccountEvent::Deposited(d)) => balance += d.amount,
            Ok(bank::AccountEvent::Withdrawn(w)) => balance -= w.amount,
            Err(e) => panic!("{name}: {e}"),
        }
    }
    (balance, events.len() as u64)
}

fn temp_db(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "protoactor-bank-proc-{test}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bank.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// A bank under test: two member processes hosting the accounts, a teller in this process
/// (a member hosting nothing), the accounts opened and a first round of transfers checked.
struct Bank {
    db: PathBuf,
    members: [Member; 2],
    system: ActorSystem,
    cluster: Cluster,
    teller: Teller,
    dice: Dice,
    accounts: Vec<String>,
}

impl Bank {
    /// Members `a` and `b` on `membership(0)` / `membership(1)`, the teller on
    /// `membership(2)`, every account opened with [`OPENING`] and 20 transfers made.
    fn open(test: &str, membership: impl Fn(usize) -> Membership, seed: u64) -> Bank {
        let db = temp_db(test);
        let members = [
            spawn_member("a", &membership(0), &db),
            spawn_member("b", &membership(1), &db),
        ];
        let (system, cluster) = start_node(&membership(2), None);
        await_hosts(&cluster, &[&members[0].address, &members[1].address]);
        let accounts: Vec<String> = (0..ACCOUNTS).map(|i| format!("acct-{i}")).collect();
        let mut teller = Teller::new(&cluster, 0);
        teller.patience = TOPOLOGY;
        for a in &accounts {
            teller.deposit(a, OPENING).expect("opening deposit");
        }
        let mut bank = Bank {
            db,
            members,
            system,
            cluster,
            teller,
            dice: Dice::new(seed),
            accounts,
        };
        bank.transfers(20);
        bank.assert_total("the first transfers");
        bank
    }

    fn transfers(&mut self, n: usize) {
        transfers(&mut self.teller, &mut self.dice, &self.accounts, n);
    }

    fn assert_total(&mut self, step: &str) {
        assert_total(&mut self.teller, &self.accounts, &self.db, step);
    }

    /// Waits until the teller sees both members hosting accounts.
    fn await_both(&self) {
        await_hosts(
            &self.cluster,
            &[&self.members[0].address, &self.members[1].address],
        );
    }

    /// Sends `signal` to member `v` while a transfer is in flight (`kill` runs as the next
    /// of 15 transfers starts).
    fn signal_mid_transfer(&mut self, v: usize, signal: &str) {
        let pid = self.members[v].process.id().to_string();
        let mut sender = Command::new("kill")
            .args([signal, &pid])
            .spawn()
            .expect("kill runs");
        self.transfers(15);
        assert!(sender.wait().expect("kill ends").success(), "kill {signal}");
    }

    /// Member `v` has gone (killed, stopped or frozen past detection): the teller sees the
    /// survivor only; 10 more transfers, and the total is checked.
    fn after_loss(&mut self, v: usize, step: &str) {
        await_hosts(&self.cluster, &[&self.members[1 - v].address]);
        self.transfers(10);
        self.assert_total(step);
    }

    /// SIGSTOP of member `v` mid-transfer, checked once the teller dropped it (the frozen
    /// member's accounts answer from the survivor); then SIGCONT, checked once the teller
    /// sees it again (its old activations, if any serve again, are fenced by their journals).
    fn freeze_and_thaw(&mut self, v: usize) {
        let label = self.members[v].label.clone();
        self.signal_mid_transfer(v, "-STOP");
        self.after_loss(v, &format!("{label} frozen"));
        let pid = self.members[v].process.id().to_string();
        let thaw = Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .expect("kill runs");
        assert!(thaw.success(), "kill -CONT");
        self.await_both();
        self.transfers(20);
        self.assert_total(&format!("{label} thawed"));
    }

    /// SIGKILL of member `v` mid-transfer; checked once the teller sees the survivor only.
    fn kill(&mut self, v: usize, step: &str) {
        self.signal_mid_transfer(v, "-9");
        self.members[v].process.wait_exit(TOPOLOGY);
        self.after_loss(v, step);
    }

    /// A new member in place of member `v` (same membership), labelled `label`; 20
    /// transfers once the teller sees it, and the total is checked.
    fn restart(&mut self, v: usize, label: &str, step: &str) {
        let membership = self.members[v].membership.clone();
        self.members[v] = spawn_member(label, &membership, &self.db);
        self.await_both();
        self.transfers(20);
        self.assert_total(step);
    }

    /// A graceful rolling restart: each member in turn is stopped gracefully (stdin closed:
    /// it leaves the cluster) while transfers run, the total is checked, a new member takes
    /// its place and the total is checked again.
    fn rolling_restart(&mut self) {
        for v in 0..2 {
            let label = self.members[v].label.clone();
            self.members[v].process.close_stdin();
            self.transfers(15);
            let status = self.members[v].process.wait_exit(TOPOLOGY);
            assert!(status.success(), "{label} exited with {status}");
            self.after_loss(v, &format!("rolling restart: {label} stopped gracefully"));
            self.restart(
                v,
                &format!("{label}r"),
                &format!("rolling restart: {label} replaced"),
            );
        }
    }

    fn close(self) {
        self.cluster.shutdown_blocking(true);
        self.system.shutdown();
        drop(self.members);
        let _ = std::fs::remove_dir_all(self.db.parent().expect("dir"));
    }
}

#[test]
fn money_is_conserved_while_members_are_killed_and_restarted() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let ports = [free_port(), free_port(), free_port()];
    let peers: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut bank = Bank::open(
        "kill",
        |i| Membership::Auto {
            port: ports[i],
            peers: peers.clone(),
        },
        0x5eed,
    );
    for round in 0..5 {
        let v = round % 2;
        let label = bank.members[v].label.clone();
        bank.kill(v, &format!("round {round}: {label} killed"));
        bank.restart(v, &label, &format!("round {round}: {label} restarted"));
    }
    // A freeze past detection: the survivor activates the frozen member's accounts; after
    // SIGCONT the old activations are fenced by their journals, never served stale.
    bank.freeze_and_thaw(0);
    bank.rolling_restart();
    bank.close();
}

/// The same bank on the etcd provider and the strongly consistent etcd identity lookup, with
/// a member frozen (SIGSTOP) mid-transfer for longer than its lease: the teller's calls to
/// the frozen member's accounts wait until etcd drops their keys, then the accounts activate
/// on the other member; after SIGCONT the frozen member's old activations never serve again.
/// Then the other member killed with kill -9 and restarted, then a graceful rolling restart.
/// After every step each balance a grain reports equals its journal and the balances add up
/// to exactly the opening total.
#[cfg(feature = "etcd")]
#[test]
fn money_is_conserved_through_a_freeze_on_the_etcd_lookup() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    if protoactor_testkit::services::etcd_endpoints().is_none() {
        return;
    }
    // Its own etcd: no other run's keys.
    let (_etcd, endpoint) = protoactor_testkit::services::ScriptServer::etcd();
    let mut bank = Bank::open(
        "freeze",
        |_| Membership::Etcd {
            endpoint: endpoint.clone(),
        },
        0xf00d,
    );
    // SIGSTOP a while a transfer is in flight; its lease runs out in etcd meanwhile.
    bank.freeze_and_thaw(0);

    bank.kill(1, "b killed");
    bank.restart(1, "b2", "b restarted");
    bank.rolling_restart();
    bank.close();
}

#[test]
fn the_bank_example_keeps_its_total() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_bank"))
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
