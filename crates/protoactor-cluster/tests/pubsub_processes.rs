//! Durable pub/sub subscriptions across processes: two member processes (this test binary
//! re-run as children, automanaged provider) keep their topics' subscribers in one SQLite
//! file. The topic's host is killed with SIGKILL; the topic is activated again on the other
//! member, loads every subscriber from the file, and acknowledged publishes reach them all.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protoactor::prelude::*;
use protoactor_cluster::pubsub::{
    ProviderStore, PubSub, PubSubConfig, SubscriptionStore, TOPIC_KIND,
};
use protoactor_cluster::Cluster;
#[path = "../../protoactor-remote/shared/messages.rs"]
mod messages;
use messages::Seq;
use protoactor_persistence::SqliteProvider;
use protoactor_testkit::cluster::{automanaged, sink_kind, NodeBuilder};
use protoactor_testkit::ports::free_port;
use protoactor_testkit::process::{protocol_line, say, test_child, ChildProcess};

const CHILD_ENV: &str = "PUBSUB_MEMBER_CHILD";
/// Longest wait for a member to start or a topology change (generous: a loaded machine).
const WAIT: Duration = Duration::from_secs(90);

fn store(db: &Path) -> ProviderStore {
    ProviderStore::new(Arc::new(SqliteProvider::open(db).expect("sqlite")))
}

fn seq(n: i64) -> Seq {
    Seq {
        n,
        tag: String::new(),
    }
}

/// One member: pub/sub with the SQLite store, and grains of kind `listener` that print
/// `GOT grain:<identity> <n>`.
fn start_member(auto_port: u16, peers: &[String], db: &Path) -> (ActorSystem, Cluster) {
    let db = db.to_path_buf();
    let node = NodeBuilder::new("pubsub-processes")
        .with_types(|s| s.register::<Seq>())
        .with_kind(sink_kind("listener", |me, s: &Seq| {
            say(&format!("GOT grain:{me} {}", s.n))
        }))
        .with_service(move || PubSub::new(PubSubConfig::default().with_store(store(&db))))
        .member(automanaged(auto_port, peers, Duration::from_millis(500)));
    (node.system, node.cluster)
}

/// Answers one command line of the parent.
fn command(
    rt: &tokio::runtime::Runtime,
    system: &ActorSystem,
    cluster: &Cluster,
    line: &str,
) -> String {
    let f: Vec<&str> = line.split_whitespace().collect();
    let done = |r: Result<(), protoactor_cluster::pubsub::PubSubError>| match r {
        Ok(()) => "OK".to_string(),
        Err(e) => format!("ERROR {e}"),
    };
    match f.as_slice() {
        ["MEMBERS"] => format!("MEMBERS {}", cluster.member_list().members().len()),
        ["OWNER", topic] => format!(
            "OWNER {}",
            cluster
                .member_list()
                .owner(TOPIC_KIND, topic)
                .unwrap_or_default()
        ),
        ["SUB", topic, name] => {
            let name = name.to_string();
            let pid = system.root().spawn(&Props::from_func(move |ctx| {
                if let Some(s) = ctx.message_as::<Seq>() {
                    say(&format!("GOT {name} {}", s.n));
                }
            }));
            done(rt.block_on(cluster.subscribe_pid(topic, &pid)))
        }
        ["SUBID", topic, identity] => {
            done(rt.block_on(cluster.subscribe_identity(topic, identity, "listener")))
        }
        ["PUB", topic, n] => {
            let n = n.parse().expect("a number");
            done(rt.block_on(cluster.publisher().publish_acknowledged(topic, seq(n))))
        }
        _ => format!("ERROR unknown command {line:?}"),
    }
}

/// Child mode of this binary: one member, driven over stdin, until killed or stdin closes.
#[test]
fn pubsub_member_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let var = |k: &str| std::env::var(k).expect(k);
    let peers: Vec<String> = var("PUBSUB_PEERS").split(',').map(String::from).collect();
    let port = var("PUBSUB_AUTO_PORT").parse().expect("port");
    let (system, cluster) = start_member(port, &peers, Path::new(&var("PUBSUB_DB")));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    say(&format!("READY {}", cluster.address()));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        say(&command(&rt, &system, &cluster, &line));
    }
    cluster.shutdown_blocking(true);
}

struct Member {
    address: String,
    process: ChildProcess,
    /// The `GOT <subscriber> <n>` lines read so far.
    got: Vec<(String, i64)>,
}

impl Member {
    fn spawn(label: &str, auto_port: u16, peers: &[String], db: &Path) -> Member {
        let mut cmd = test_child("pubsub_member_child");
        cmd.env(CHILD_ENV, "1")
            .env("PUBSUB_AUTO_PORT", auto_port.to_string())
            .env("PUBSUB_PEERS", peers.join(","))
            .env("PUBSUB_DB", db);
        let tags = ["READY", "OK", "ERROR", "MEMBERS", "OWNER", "GOT"];
        let mut process = ChildProcess::spawn(label, cmd, move |l| protocol_line(l, &tags));
        let ready = process.next_line("READY", WAIT);
        let address = ready.trim_start_matches("READY").trim().to_string();
        Member {
            address,
            process,
            got: Vec::new(),
        }
    }

    /// Sends `cmd` and returns its answer (`GOT` lines on the way are kept).
    fn ask(&mut self, cmd: &str) -> String {
        self.process.send_line(cmd);
        loop {
            let line = self.process.next_line(cmd, WAIT);
            match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["GOT", who, n] => self.got.push((who.to_string(), n.parse().unwrap())),
                _ => return line,
            }
        }
    }

    fn ok(&mut self, cmd: &str) {
        let answer = self.ask(cmd);
        assert_eq!(answer, "OK", "{}: {cmd}", self.process.label());
    }

    fn got(&self, who: &str) -> Vec<i64> {
        self.got
            .iter()
            .filter(|(w, _)| w == who)
            .map(|(_, n)| *n)
            .collect()
    }

    fn await_members(&mut self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.ask("MEMBERS") != format!("MEMBERS {n}") {
            assert!(
                Instant::now() < deadline,
                "{} never saw {n} members",
                self.process.label()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn temp_db() -> PathBuf {
    let dir = protoactor_testkit::paths::scratch_dir()
        .join(format!("pubsub-processes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("topics.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

#[test]
fn subscriptions_in_sqlite_survive_a_kill_9_of_the_topic_host() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let db = temp_db();
    let ports = [free_port(), free_port()];
    let peers: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut a = Member::spawn("a", ports[0], &peers, &db);
    let mut b = Member::spawn("b", ports[1], &peers, &db);
    a.await_members(2);
    b.await_members(2);
    let topic = (0..)
        .map(|i| format!("k{i}"))
        .find(|t| a.ask(&format!("OWNER {t}")) == format!("OWNER {}", a.address))
        .unwrap();
    b.ok(&format!("SUB {topic} pid"));
    b.ok(&format!("SUBID {topic} g1"));
    b.ok(&format!("SUBID {topic} g2"));
    b.ok(&format!("PUB {topic} 1"));
    assert_eq!(b.got("pid"), [1]);
    // The file has all three (read by a third connection, as a restarted process would).
    let saved = store(&db).get(&topic).unwrap().expect("saved");
    assert_eq!(saved.subscribers.len(), 3, "{saved:?}");

    a.process.kill();
    b.await_members(1);
    // The topic is activated again on B from the file: every subscriber gets the next ones.
    for n in [2, 3] {
        b.ok(&format!("PUB {topic} {n}"));
    }
    assert_eq!(b.got("pid"), [1, 2, 3]);
    for g in ["grain:g1", "grain:g2"] {
        assert!(b.got(g).ends_with(&[2, 3]), "{g}: {:?}", b.got(g));
    }
    b.process.close_stdin();
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}
