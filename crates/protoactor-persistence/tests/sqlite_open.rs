//! Many openers of one new SQLite file at once, as several processes of one program starting
//! together do: every `SqliteProvider::open` succeeds (none fails with "database is locked").
//! And the SQLite provider's write queue outliving a runtime that shut down.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use protoactor_persistence::{Provider, SqliteProvider};
use protoactor_testkit::process::{test_child, ChildProcess};

/// Opens `path` and uses it once (a write and a read), as a program's first steps do.
fn open_and_use(path: &Path) -> Result<(), String> {
    let p = SqliteProvider::open(path).map_err(|e| format!("open: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let name = format!(
            "opener-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        );
        let record = protoactor_persistence::Record {
            type_name: "test.Empty".into(),
            payload: Vec::new(),
        };
        p.persist_event(&name, 0, record)
            .await
            .map_err(|e| format!("write: {e}"))?;
        p.get_events(&name, 0, 1)
            .await
            .map(|_| ())
            .map_err(|e| format!("read: {e}"))
    })
}

/// Without the fix about 6% of the rounds failed ("database is locked" from the WAL switch).
#[test]
fn threads_opening_a_new_file_at_once_all_succeed() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 200;
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("new.db"));
        // Each thread has its own connection; the barrier releases them together.
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    open_and_use(&path)
                })
            })
            .collect();
        let errors: Vec<String> = handles
            .into_iter()
            .filter_map(|h| h.join().unwrap().err())
            .collect();
        assert!(errors.is_empty(), "round {round}: {errors:?}");
    }
}

/// Without the fix about 7% of the rounds of two processes failed here.
#[test]
fn processes_opening_a_new_file_at_once_all_succeed() {
    const PROCESSES: usize = 2;
    const ROUNDS: usize = 80;
    // Only to avoid hanging forever; no assertion on time.
    const WAIT: Duration = Duration::from_secs(120);
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let mut children: Vec<ChildProcess> = (0..PROCESSES)
            .map(|i| {
                let mut cmd = test_child("open_child");
                cmd.env("OPEN_CHILD_PATH", &path);
                // The harness may print `test open_child ... ` before a line of the child.
                ChildProcess::spawn(&format!("open child {i}"), cmd, |l| {
                    ["ready", "opened:"]
                        .iter()
                        .find_map(|t| l.find(t).map(|i| l[i..].to_string()))
                })
            })
            .collect();
        // Every child is started and waiting: then all are told to open at once.
        for c in &mut children {
            let line = c
                .try_next_line(WAIT)
                .ok()
                .filter(|l| l.starts_with("ready"));
            assert!(line.is_some(), "round {round}: a child exited before ready");
        }
        for c in &mut children {
            c.send_line("go");
        }
        let mut errors = Vec::new();
        for mut c in children {
            let result = c
                .try_next_line(WAIT)
                .ok()
                .filter(|l| l.starts_with("opened:"))
                .unwrap_or_else(|| "opened: no result (child died)".into());
            assert!(c.wait_exit(WAIT).success() || result != "opened: ok");
            if result != "opened: ok" {
                errors.push(result);
            }
        }
        assert!(errors.is_empty(), "round {round}: {errors:?}");
    }
}

/// The child process of `processes_opening_a_new_file_at_once_all_succeed`.
#[test]
#[ignore = "helper process started by processes_opening_a_new_file_at_once_all_succeed"]
fn open_child() {
    let path = std::env::var("OPEN_CHILD_PATH").expect("OPEN_CHILD_PATH");
    let mut stdout = std::io::stdout();
    writeln!(stdout, "ready").unwrap();
    stdout.flush().unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let result = match open_and_use(Path::new(&path)) {
        Ok(()) => "ok".to_string(),
        Err(e) => e,
    };
    writeln!(stdout, "opened: {result}").unwrap();
    stdout.flush().unwrap();
}

/// A write queued from a runtime that is already shut down is still stored and answered
/// (the writer runs on its own thread, not on that runtime's blocking pool), and the
/// provider keeps serving other runtimes: no later write waits forever.
#[test]
fn a_write_lost_with_its_runtime_does_not_stall_the_provider() {
    use std::task::{Context, Poll, Waker};
    let dir = tempfile::tempdir().unwrap();
    let p = SqliteProvider::open(dir.path().join("shared.db")).unwrap();
    let record = || protoactor_persistence::Record {
        type_name: "test.Empty".into(),
        payload: Vec::new(),
    };
    let gone = tokio::runtime::Runtime::new().unwrap();
    let handle = gone.handle().clone();
    drop(gone);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let wait = std::time::Duration::from_secs(60);
    let mut w = p.persist_event("lost", 0, record());
    let first = {
        let _in_gone_runtime = handle.enter();
        w.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    };
    let r = match first {
        Poll::Ready(r) => r,
        Poll::Pending => rt
            .block_on(async { tokio::time::timeout(wait, w).await })
            .expect("the lost write is answered"),
    };
    r.expect("stored although its runtime is gone");
    rt.block_on(async { tokio::time::timeout(wait, p.persist_event("next", 0, record())).await })
        .expect("a later write is not stalled")
        .expect("and it is stored");
}
