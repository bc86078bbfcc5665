//! Persistent typed grains (`Builder::persistent`): the bank example's `Account` grain in
//! clusters of one process (test provider), its journal in a shared store. Recovery after a
//! restart and on another member, snapshots with events, fencing of a second activation,
//! failed recoveries answered as grain errors, and the Go wire shape.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bank::proto::*;
use bank::{account_kind, AccountEvent};
use protoactor::prelude::*;
use protoactor::Config;
use protoactor_cluster::persistent::{journal_name, GrainStore, PersistentMessage};
use protoactor_cluster::test_provider::{InMemAgent, TestProvider};
use protoactor_cluster::{
    CallOptions, Cluster, ClusterError, ClusterIdentity, GrainError, GrainRequest,
};
use protoactor_persistence::{Entry, InMemoryProvider, PersistenceError, Provider, Record};
use protoactor_testkit::cluster::{Node, NodeBuilder, ScopedNode};
use protoactor_testkit::wait::poll_until;

/// Generous upper bound for things that must happen (never a timing assertion).
const WAIT: Duration = Duration::from_secs(30);

fn node_with(name: &str, agent: &Arc<InMemAgent>, store: GrainStore) -> ScopedNode {
    NodeBuilder::new(name)
        .with_system_config(Config::default().with_worker_threads(2))
        .with_types(register_types)
        .with_kind(account_kind(store))
        .scoped_member(TestProvider::new(agent))
}

fn node(agent: &Arc<InMemAgent>, store: &Arc<dyn Provider>) -> ScopedNode {
    node_with("bank", agent, GrainStore::new(store.clone()))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    poll_until(what, WAIT, || done().then_some(()));
}

fn account(cluster: &Cluster, id: &str) -> AccountClient {
    AccountClient::new(cluster, id)
}

fn deposit(cluster: &Cluster, id: &str, amount: i64, op_id: u64) -> Balance {
    account(cluster, id)
        .deposit_blocking(Change { amount, op_id })
        .expect("deposit")
}

fn balance(cluster: &Cluster, id: &str) -> i64 {
    account(cluster, id)
        .get_balance_blocking(Empty {})
        .expect("balance")
        .amount
}

fn events(store: &Arc<dyn Provider>, id: &str) -> Vec<Entry> {
    block_on(store.get_events(&journal_name(ACCOUNT_KIND, id), 0, 1000)).expect("events")
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("protoactor-pgrains-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.db"));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn state_is_recovered_after_a_restart_of_the_whole_cluster() {
    let db = temp_db("restart");
    let sqlite = || -> Arc<dyn Provider> {
        Arc::new(protoactor_persistence::SqliteProvider::open(&db).expect("sqlite"))
    };
    let store = sqlite();
    {
        let n = node(&InMemAgent::new(), &store);
        deposit(&n.cluster, "ann", 100, 1);
        let b = account(&n.cluster, "ann")
            .withdraw_blocking(Change {
                amount: 30,
                op_id: 2,
            })
            .expect("withdraw");
        assert_eq!((b.amount, b.events), (70, 2));
        // A repeated operation id is answered, not applied again.
        assert_eq!(deposit(&n.cluster, "ann", 100, 1).amount, 70);
    }
    let n = node(&InMemAgent::new(), &sqlite());
    let b = account(&n.cluster, "ann")
        .get_balance_blocking(Empty {})
        .expect("balance");
    assert_eq!((b.amount, b.events), (70, 2));
    // The journal holds protobuf records under their full names, as Go's persistence reads.
    let types: Vec<String> = events(&store, "ann")
        .into_iter()
        .map(|e| e.record.type_name)
        .collect();
    assert_eq!(types, ["bank.Deposited", "bank.Withdrawn"]);
    let first = &events(&store, "ann")[0].record;
    assert!(matches!(
        AccountEvent::decode_payload(&first.type_name, &first.payload),
        Ok(AccountEvent::Deposited(Deposited {
            amount: 100,
            op_id: 1
        }))
    ));
}

/// The member of `a` and `b` whose activation of `id` answers calls from `a`.
fn host<'a>(a: &'a Node, b: &'a Node, id: &str) -> (&'a Node, &'a Node) {
    let pid = a
        .cluster
        .get_blocking(&ClusterIdentity::new(id, ACCOUNT_KIND))
        .expect("activation");
    if pid.address() == a.cluster.address() {
        (a, b)
    } else {
        (b, a)
    }
}

#[test]
fn an_account_moves_to_another_member_with_its_state() {
    let agent = InMemAgent::new();
    let store: Arc<dyn Provider> = Arc::new(InMemoryProvider::new());
    let a = node(&agent, &store);
    let b = node(&agent, &store);
    wait_until("two members", || {
        a.cluster.member_list().members().len() == 2 && b.cluster.member_list().members().len() == 2
    });
    // An identity hosted by b, asked for from a.
    let id = (0..)
        .map(|i| format!("acct-{i}"))
        .find(|id| host(&a, &b, id).0.cluster.address() == b.cluster.address())
        .expect("an identity on b");
    deposit(&a.cluster, &id, 40, 1);
    deposit(&a.cluster, &id, 2, 2);
    b.cluster.shutdown_blocking(true);
    wait_until("b gone from a's view", || {
        a.cluster.member_list().members().len() == 1
    });
    let pid = a
        .cluster
        .get_blocking(&ClusterIdentity::new(&id, ACCOUNT_KIND))
        .expect("re-activated");
    assert_eq!(pid.address(), a.cluster.address());
    assert_eq!(balance(&a.cluster, &id), 42);
    assert_eq!(deposit(&a.cluster, &id, 8, 3).amount, 50);
}

#[test]
fn a_snapshot_and_the_events_after_it_rebuild_the_state() {
    let store: Arc<dyn Provider> = Arc::new(InMemoryProvider::new());
    let journal = journal_name(ACCOUNT_KIND, "snap");
    {
        let n = node_with(
            "bank",
            &InMemAgent::new(),
            GrainStore::new(store.clone()).snapshot_every(3),
        );
        for op in 1..=7 {
            deposit(&n.cluster, "snap", 10, op);
        }
    }
    let snap = block_on(store.get_snapshot(&journal))
        .expect("read")
        .expect("a snapshot");
    assert_eq!(snap.index, 6, "snapshots after 3 and 6 events");
    let state =
        AccountState::decode_payload(&snap.record.type_name, &snap.record.payload).expect("state");
    assert_eq!((state.balance, state.last_op_id), (60, 6));
    // The events the snapshot covers are gone: only the snapshot can give their sum.
    block_on(store.delete_events(&journal, 5)).expect("delete");
    assert_eq!(events(&store, "snap").len(), 1);
    let n = node(&InMemAgent::new(), &store);
    let b = account(&n.cluster, "snap")
        .get_balance_blocking(Empty {})
        .expect("balance");
    assert_eq!((b.amount, b.events), (70, 7));
    // The recovered last operation id came from the snapshot too.
    assert_eq!(deposit(&n.cluster, "snap", 10, 6).amount, 70);
}

#[test]
fn a_closure_decides_when_to_snapshot() {
    let store: Arc<dyn Provider> = Arc::new(InMemoryProvider::new());
    let n = node_with(
        "bank",
        &InMemAgent::new(),
        GrainStore::new(store.clone()).snapshot_when(|c| c.next_index == 4),
    );
    for op in 1..=5 {
        deposit(&n.cluster, "when", 1, op);
    }
    let snap = block_on(store.get_snapshot(&journal_name(ACCOUNT_KIND, "when")))
        .expect("read")
        .expect("a snapshot");
    assert_eq!(snap.index, 4);
}

/// Two activations of one identity, made by hand: one in each of two clusters that share
/// the store, the first cluster's caller pointed at the second's activation.
#[test]
fn a_second_activation_is_fenced_and_the_call_goes_to_the_current_one() {
    let store: Arc<dyn Provider> = Arc::new(InMemoryProvider::new());
    let one = node(&InMemAgent::new(), &store);
    let two = node_with("bank-2", &InMemAgent::new(), GrainStore::new(store.clone()));
    let ci = ClusterIdentity::new("shared", ACCOUNT_KIND);
    // Both recover the empty journal.
    assert_eq!(balance(&one.cluster, "shared"), 0);
    assert_eq!(balance(&two.cluster, "shared"), 0);
    let current = one.cluster.get_blocking(&ci).expect("current");
    let stale = two.cluster.get_blocking(&ci).expect("stale");
    assert_ne!(current, stale);
    // The current one writes event 0.
    assert_eq!(deposit(&one.cluster, "shared", 10, 1).amount, 10);

    // A caller whose view says the other activation: its write of event 0 conflicts, that
    // activation stops, and the client's retry reaches the current one.
    one.cluster.pid_cache().set(ci.clone(), stale.clone());
    let b = deposit(&one.cluster, "shared", 5, 2);
    assert_eq!((b.amount, b.events), (15, 2));
    wait_until("the stale activation stopped", || {
        two.cluster.activation_counts()[ACCOUNT_KIND] == 0
    });
    assert_eq!(one.cluster.pid_cache().get(&ci), Some(current.clone()));
    assert_eq!(events(&store, "shared").len(), 2);

    // The answer itself, as any caller (a Go one) gets it: the second cluster's new
    // activation recovers 2 events, falls behind one more, and is asked for a read.
    assert_eq!(balance(&two.cluster, "shared"), 15);
    deposit(&one.cluster, "shared", 1, 3);
    let raw = two.cluster.request_blocking_as::<Balance, _>(
        "shared",
        ACCOUNT_KIND,
        GrainRequest::new(2, &Empty {}),
        &CallOptions::default(),
    );
    let Err(ClusterError::Grain(e)) = raw else {
        panic!("expected a grain error, got {raw:?}");
    };
    assert_eq!(e.reason, "UNAVAILABLE");
    assert_eq!(
        e.metadata.get("stale_activation").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        e.metadata.get("journal").map(String::as_str),
        Some("Account/shared")
    );
    assert_eq!(
        e.metadata.get("store").map(String::as_str),
        Some("in-memory")
    );
    assert!(GrainError::from(e).is_stale_activation());
    wait_until("the second stale activation stopped", || {
        two.cluster.activation_counts()[ACCOUNT_KIND] == 0
    });
    assert_eq!(balance(&two.cluster, "shared"), 16);
}

/// A store whose reads fail while `down` is set.
#[derive(Default)]
struct FlakyStore {
    inner: InMemoryProvider,
    down: AtomicBool,
}

impl FlakyStore {
    fn check(&self) -> Result<(), PersistenceError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PersistenceError::Storage("the disk is on fire".into()));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Provider for FlakyStore {
    fn describe(&self) -> String {
        "flaky".into()
    }
    async fn get_snapshot(&self, name: &str) -> Result<Option<Entry>, PersistenceError> {
        self.check()?;
        self.inner.get_snapshot(name).await
    }
    async fn persist_snapshot(&self, n: &str, i: u64, s: Record) -> Result<(), PersistenceError> {
        self.inner.persist_snapshot(n, i, s).await
    }
    async fn delete_snapshots(&self, n: &str, to: u64) -> Result<(), PersistenceError> {
        self.inner.delete_snapshots(n, to).await
    }
    async fn get_events(
        &self,
        n: &str,
        from: u64,
        max: usize,
    ) -> Result<Vec<Entry>, PersistenceError> {
        self.check()?;
        self.inner.get_events(n, from, max).await
    }
    async fn persist_event(&self, n: &str, i: u64, e: Record) -> Result<(), PersistenceError> {
        self.inner.persist_event(n, i, e).await
    }
    async fn persist_events(
        &self,
        n: &str,
        i: u64,
        e: Vec<Record>,
    ) -> Result<(), PersistenceError> {
        self.inner.persist_events(n, i, e).await
    }
    async fn delete_events(&self, n: &str, to: u64) -> Result<(), PersistenceError> {
        self.inner.delete_events(n, to).await
    }
}

#[test]
fn a_failed_recovery_is_the_callers_grain_error_and_the_next_call_recovers() {
    let flaky = Arc::new(FlakyStore::default());
    let store: Arc<dyn Provider> = flaky.clone();
    let n = node(&InMemAgent::new(), &store);
    deposit(&n.cluster, "f", 9, 1);
    // Idle-stop is 60 s: stop the activation by hand so that the next call recovers.
    let pid = n
        .cluster
        .get_blocking(&ClusterIdentity::new("f", ACCOUNT_KIND))
        .expect("pid");
    n.system.root().stop(&pid);
    wait_until("the activation stopped", || {
        n.cluster.activation_counts()[ACCOUNT_KIND] == 0
    });

    flaky.down.store(true, Ordering::SeqCst);
    let e = account(&n.cluster, "f")
        .deposit_blocking(Change {
            amount: 1,
            op_id: 2,
        })
        .unwrap_err();
    assert!(e.cluster_error().is_none(), "answered by the grain: {e:?}");
    assert_eq!(e.reason, "UNAVAILABLE");
    assert!(e.message.contains("the disk is on fire"), "{e}");
    assert_eq!(e.metadata.get("store").map(String::as_str), Some("flaky"));
    assert!(!e.is_stale_activation());
    // Not half-started: the failed activation stops, and nothing was written.
    wait_until("the failed activation stopped", || {
        n.cluster.activation_counts()[ACCOUNT_KIND] == 0
    });
    flaky.down.store(false, Ordering::SeqCst);
    assert_eq!(events(&store, "f").len(), 1);
    assert_eq!(balance(&n.cluster, "f"), 9);
}

#[test]
fn a_record_that_cannot_be_read_is_data_loss() {
    let store: Arc<dyn Provider> = Arc::new(InMemoryProvider::new());
    let bad = Record {
        type_name: "bank.Unknown".into(),
        payload: vec![],
    };
    block_on(store.persist_event(&journal_name(ACCOUNT_KIND, "bad"), 0, bad)).expect("write");
    let n = node(&InMemAgent::new(), &store);
    let e = account(&n.cluster, "bad")
        .get_balance_blocking(Empty {})
        .unwrap_err();
    assert_eq!(e.reason, "DATA_LOSS", "{e:?}");
    assert!(e.message.contains("bank.Unknown"), "{e}");
}

/// What Go's generated client sends: the kind name and method indexes of
/// protoc-gen-go-grain, `GrainRequest` in, the output message out.
#[test]
fn the_wire_is_the_plain_kinds() {
    assert_eq!(ACCOUNT_KIND, "Account");
    let store: Arc<dyn Provider> = Arc::new(InMemoryProvider::new());
    let n = node(&InMemAgent::new(), &store);
    let call = |index: i32, input: &Change| {
        n.cluster.request_blocking_as::<Balance, _>(
            "wire",
            "Account",
            GrainRequest::new(index, input),
            &CallOptions::default(),
        )
    };
    assert_eq!(
        call(
            0,
            &Change {
                amount: 7,
                op_id: 0
            }
        )
        .unwrap()
        .amount,
        7
    );
    assert_eq!(
        call(
            1,
            &Change {
                amount: 2,
                op_id: 0
            }
        )
        .unwrap()
        .amount,
        5
    );
    let err = call(
        1,
        &Change {
            amount: 50,
            op_id: 0,
        },
    )
    .unwrap_err();
    assert!(matches!(err, ClusterError::Grain(ref g) if g.reason == "FAILED_PRECONDITION"));
    let err = call(9, &Change::default()).unwrap_err();
    assert!(matches!(err, ClusterError::Grain(ref g) if g.reason == "UNIMPLEMENTED"));
    assert_eq!(balance(&n.cluster, "wire"), 5);
}
