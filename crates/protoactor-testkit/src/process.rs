//! Child processes for the multi-process tests: Go programs, example binaries and this test
//! binary re-run as a child ([`test_child`]).
//!
//! A [`ChildProcess`] reads its stdout on a thread and hands the lines a filter keeps to a
//! channel, so every wait for a line has a deadline and a stuck child fails the test instead
//! of hanging it; its stderr is kept (the last 40 lines) for failure messages, and echoed
//! with `PROTOACTOR_INTEROP_VERBOSE` set. The process is killed (SIGKILL) when dropped.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How many lines of a child's stderr are kept for failure messages.
const STDERR_TAIL: usize = 40;

/// The prefix of a protocol line printed by a Rust child: the test harness may print its
/// own text on the same line before it.
pub const PROTOCOL_PREFIX: &str = "@@ ";

/// True when `PROTOACTOR_INTEROP_VERBOSE` is set: children's output is echoed.
pub fn verbose() -> bool {
    std::env::var_os("PROTOACTOR_INTEROP_VERBOSE").is_some()
}

/// The words of `line` as a program's arguments (`"100 5 7"` -> `["100", "5", "7"]`): how
/// tests of a child program's argument parsing write its command line.
pub fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// A command that runs only the test `test` of this test binary (ignored or not), one
/// thread, output not captured: how a test starts a Rust child process of its own. Set an
/// environment variable on it that tells the child test it is the child.
pub fn test_child(test: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.args([
        test,
        "--exact",
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    cmd
}

/// Prints one protocol line from a Rust child (on a line of its own, prefixed with
/// [`PROTOCOL_PREFIX`]) and flushes it.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\n{PROTOCOL_PREFIX}{line}");
    let _ = out.flush();
}

/// The protocol line in `line` if its first word is one of `tags`: after
/// [`PROTOCOL_PREFIX`] when a Rust child printed it, or the whole line (Go programs print
/// theirs bare); trailing whitespace removed.
pub fn protocol_line(line: &str, tags: &[&str]) -> Option<String> {
    let l = match line.find(PROTOCOL_PREFIX) {
        Some(i) => &line[i + PROTOCOL_PREFIX.len()..],
        None => line,
    };
    let tag = l.split_whitespace().next()?;
    tags.contains(&tag).then(|| l.trim_end().to_string())
}

/// A running child process; killed (SIGKILL) when dropped.
pub struct ChildProcess {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl ChildProcess {
    /// Starts `cmd` (stdin, stdout and stderr piped) as `label`; the stdout lines for which
    /// `filter` returns `Some` are what [`next_line`](Self::next_line) returns.
    pub fn spawn(
        label: &str,
        mut cmd: Command,
        filter: impl Fn(&str) -> Option<String> + Send + 'static,
    ) -> ChildProcess {
        let verbose = verbose();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{label}: cannot start {cmd:?}: {e}"));
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tail, err, l) = (
            stderr_tail.clone(),
            child.stderr.take().expect("piped stderr"),
            label.to_string(),
        );
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if verbose {
                    eprintln!("[{l} stderr] {line}");
                }
                let mut t = tail.lock();
                if t.len() == STDERR_TAIL {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let l = label.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if verbose {
                    eprintln!("[{l}] {line}");
                }
                if let Some(p) = filter(&line) {
                    if tx.send(p).is_err() {
                        break;
                    }
                }
            }
        });
        ChildProcess {
            label: label.to_string(),
            stdin: child.stdin.take(),
            child,
            lines: rx,
            stderr_tail,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// Like [`spawn`](Self::spawn), keeping every stdout line.
    pub fn spawn_all_lines(label: &str, cmd: Command) -> ChildProcess {
        Self::spawn(label, cmd, |l| Some(l.to_string()))
    }

    /// The label given at start (in failure messages).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The OS process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The next kept stdout line; panics (with the stderr tail) when none comes within
    /// `timeout` or the process ends first. `what` names the awaited line.
    pub fn next_line(&mut self, what: &str, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => panic!(
                "{}: no {what:?} within {timeout:?}; its stderr ends with:\n{}",
                self.label,
                self.stderr_tail()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait();
                // All of stderr, up to the end of the process.
                if let Some(r) = self.stderr_reader.take() {
                    let _ = r.join();
                }
                panic!(
                    "{}: the process ended while waiting for {what:?} ({status:?}); its stderr \
                     ends with:\n{}",
                    self.label,
                    self.stderr_tail()
                )
            }
        }
    }

    /// The next kept stdout line, or why there is none (timeout, or stdout closed).
    pub fn try_next_line(&mut self, timeout: Duration) -> Result<String, RecvTimeoutError> {
        self.lines.recv_timeout(timeout)
    }

    /// Skips kept lines until one satisfies `pred` and returns it; panics like
    /// [`next_line`](Self::next_line) when `timeout` (for the whole wait) passes first.
    pub fn wait_for_line(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let l = self.next_line(what, left);
            if pred(&l) {
                return l;
            }
        }
    }

    /// The kept lines still to come, until stdout closes (the process ended or closed it).
    pub fn remaining_lines(&mut self) -> impl Iterator<Item = String> + '_ {
        self.lines.iter()
    }

    /// Writes one line to the child's stdin; panics when it cannot.
    pub fn send_line(&mut self, line: &str) {
        let label = &self.label;
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("{label}: stdin is closed"));
        writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("{label}: cannot send {line:?}: {e}"));
    }

    /// Closes the child's stdin (the children of these suites take it as "leave gracefully").
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit; kills it and panics when `timeout` passes first.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the child") {
                return status;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "{}: did not exit within {timeout:?}; its stderr ends with:\n{}",
                    self.label,
                    self.stderr_tail()
                );
            }
            std::thread::sleep(crate::wait::POLL);
        }
    }

    /// Closes stdin and waits (at most `timeout`) for the exit.
    pub fn stop(&mut self, timeout: Duration) -> ExitStatus {
        self.close_stdin();
        self.wait_exit(timeout)
    }

    /// The last lines of the child's stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr_tail
            .lock()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.stdin.take();
        self.kill();
    }
}

/// Runs `cmd` to its end with stdout captured (stderr inherited); kills it and panics when
/// it takes longer than `limit`, panics when it fails. Returns its stdout.
pub fn run_to_end(label: &str, mut cmd: Command, limit: Duration) -> String {
    let mut p = ChildProcess::spawn_all_lines(label, {
        cmd.stdin(Stdio::null());
        cmd
    });
    let status = p.wait_exit(limit);
    let stdout: Vec<String> = p.remaining_lines().collect();
    let stdout = stdout.join("\n");
    assert!(
        status.success(),
        "{label} failed ({status}); stdout:\n{stdout}\nstderr ends with:\n{}",
        p.stderr_tail()
    );
    stdout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_the_words_of_a_line() {
        assert_eq!(args(" 100  5\t7 "), ["100", "5", "7"]);
        assert!(args("").is_empty());
    }

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn protocol_lines_are_found_after_the_prefix_or_bare() {
        let tags = ["READY", "REPLY"];
        assert_eq!(
            protocol_line("test x ... @@ READY a b  ", &tags).as_deref(),
            Some("READY a b")
        );
        assert_eq!(protocol_line("REPLY x", &tags).as_deref(), Some("REPLY x"));
        assert_eq!(protocol_line("noise", &tags), None);
        assert_eq!(protocol_line("", &tags), None);
    }

    #[test]
    fn lines_commands_and_exit() {
        let mut p = ChildProcess::spawn(
            "echo",
            sh("echo skip; echo READY 1; while read l; do echo \"READY $l\"; done; exit 3"),
            |l| l.starts_with("READY").then(|| l.to_string()),
        );
        assert_eq!(p.next_line("READY", Duration::from_secs(10)), "READY 1");
        p.send_line("two");
        assert_eq!(
            p.wait_for_line("two", Duration::from_secs(10), |l| l.ends_with("two")),
            "READY two"
        );
        assert_eq!(p.stop(Duration::from_secs(10)).code(), Some(3));
    }

    #[test]
    #[should_panic(expected = "the process ended while waiting")]
    fn a_process_that_ends_fails_the_wait_with_its_stderr() {
        let mut p = ChildProcess::spawn_all_lines("quiet", sh("echo oops >&2"));
        p.next_line("anything", Duration::from_secs(10));
    }

    #[test]
    fn run_to_end_returns_stdout_and_a_stuck_child_is_killed() {
        assert_eq!(
            run_to_end("two", sh("echo a; echo b"), Duration::from_secs(10)),
            "a\nb"
        );
        let r = std::panic::catch_unwind(|| {
            run_to_end("stuck", sh("sleep 30"), Duration::from_millis(100))
        });
        assert!(r.is_err());
    }
}
