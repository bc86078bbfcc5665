//! A duplicate-activation detector across processes: a hello grain that appends its life to
//! a log file (one per member process), and the reading and checking of those logs.
//!
//! Lines (times in µs since the Unix epoch, one machine's clock for every process):
//!
//! ```text
//! start <identity> <address> <pid id> <t>
//! stop <identity> <address> <pid id> <last message t or 0> <t>
//! ```
//!
//! An activation *serves* from its `start` to the last message it handled. Two activations
//! of one identity overlap when the earlier one served a message at or after the later one
//! started: then the identity was two actors.
//!
//! Go members (`interop/cmd/gocluster` with [`super::GO_ACTIVATION_LOG_ARG`]) write the same
//! lines (their `start` on `ClusterInit`, right after `Started`) and answer with their PID id
//! too, so mixed clusters are measured alike.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use protoactor::prelude::*;
use protoactor_cluster::GrainContext;

use super::hello::{HelloRequest, HelloResponse};

/// Microseconds since the Unix epoch (comparable across the processes of one machine).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn append(file: &Mutex<std::fs::File>, line: String) {
    // One write per line on an O_APPEND file: whole lines even if the process dies.
    let _ = file.lock().write_all(line.as_bytes());
}

struct LoggedHello {
    log: Arc<Mutex<std::fs::File>>,
    /// (identity, address, pid id) once started.
    me: Option<(String, String, String)>,
    last: u64,
}

impl Actor for LoggedHello {
    fn receive(&mut self, ctx: &mut Context) {
        if ctx.message_as::<Started>().is_some() {
            let ci = ctx.cluster_identity().expect("a grain knows its identity");
            let me = (
                ci.identity,
                ctx.system().address(),
                ctx.self_pid().id().to_string(),
            );
            append(
                &self.log,
                format!("start {} {} {} {}\n", me.0, me.1, me.2, now_us()),
            );
            self.me = Some(me);
        } else if ctx.message_as::<Stopped>().is_some() {
            if let Some((id, at, pid)) = self.me.take() {
                append(
                    &self.log,
                    format!("stop {id} {at} {pid} {} {}\n", self.last, now_us()),
                );
            }
        } else if ctx.message_as::<HelloRequest>().is_some() {
            self.last = now_us();
            let Some((identity, address, pid)) = self.me.clone() else {
                return;
            };
            let kind = ctx.cluster_identity().map(|c| c.kind).unwrap_or_default();
            ctx.respond(HelloResponse {
                message: pid,
                kind,
                identity,
                address,
            });
        }
    }
}

/// A hello grain (answers `HelloRequest` with `HelloResponse { message: <its PID id>, .. }`)
/// that appends its `start` and `stop` lines to the file at `path` (created if missing).
pub fn logged_hello_props(path: &Path) -> Props {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("activation log {}: {e}", path.display()));
    let log = Arc::new(Mutex::new(file));
    Props::from_producer(move || LoggedHello {
        log: log.clone(),
        me: None,
        last: 0,
    })
}

/// One activation read from the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Life {
    /// The grain's identity.
    pub identity: String,
    /// The member's address.
    pub address: String,
    /// The grain's PID id.
    pub pid: String,
    /// When it started (µs).
    pub start: u64,
    /// When it last handled a message (µs), once stopped (0: none).
    pub last: Option<u64>,
    /// When it stopped (µs).
    pub stop: Option<u64>,
}

impl Life {
    /// The last instant it served: its last message (or its start) once stopped; `killed`
    /// (the kill time of its member) if it never stopped and its member was killed; else
    /// still serving (`u64::MAX`).
    pub fn served_until(&self, killed: &BTreeMap<String, u64>) -> u64 {
        match (self.last, killed.get(&self.address)) {
            (Some(last), _) => last.max(self.start),
            (None, Some(k)) => *k,
            (None, None) => u64::MAX,
        }
    }
}

/// Every activation in the logs at `paths` (files that do not exist yet are empty).
pub fn read_lives(paths: &[PathBuf]) -> Vec<Life> {
    let mut lives: BTreeMap<(String, String), Life> = BTreeMap::new();
    for p in paths {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                ["start", id, at, pid, t] => {
                    lives.insert(
                        (at.to_string(), pid.to_string()),
                        Life {
                            identity: id.to_string(),
                            address: at.to_string(),
                            pid: pid.to_string(),
                            start: t.parse().unwrap_or(0),
                            last: None,
                            stop: None,
                        },
                    );
                }
                ["stop", _, at, pid, last, t] => {
                    if let Some(l) = lives.get_mut(&(at.to_string(), pid.to_string())) {
                        l.last = last.parse().ok();
                        l.stop = t.parse().ok();
                    }
                }
                _ => {}
            }
        }
    }
    lives.into_values().collect()
}

/// The pairs (earlier, later) of activations of one identity in `lives` where the earlier
/// served at or after the later started (see the module docs), given the kill time of every
/// member killed (by address).
fn overlapping<'a>(lives: &'a [Life], killed: &BTreeMap<String, u64>) -> Vec<(&'a Life, &'a Life)> {
    let mut by_id: BTreeMap<&str, Vec<&Life>> = BTreeMap::new();
    for l in lives {
        by_id.entry(l.identity.as_str()).or_default().push(l);
    }
    let mut out = Vec::new();
    for mut ls in by_id.into_values() {
        ls.sort_by_key(|l| l.start);
        for (i, a) in ls.iter().enumerate() {
            for b in &ls[i + 1..] {
                if a.served_until(killed) >= b.start {
                    out.push((*a, *b));
                }
            }
        }
    }
    out
}

/// The overlaps in `lives` (see the module docs), given the kill time of every member killed
/// (by address): one line per pair of activations of one identity that served at once.
pub fn overlaps(lives: &[Life], killed: &BTreeMap<String, u64>) -> Vec<String> {
    overlapping(lives, killed)
        .into_iter()
        .map(|(a, b)| {
            format!(
                "{}: {}|{} (start {}, served until {}) and {}|{} (start {})",
                a.identity,
                a.address,
                a.pid,
                a.start,
                a.served_until(killed),
                b.address,
                b.pid,
                b.start
            )
        })
        .collect()
}

/// The activations still alive in `lives` (no `stop` line, member not in `killed`):
/// identity -> the addresses of its live activations. At a stable topology every identity
/// called has exactly one.
pub fn alive(lives: &[Life], killed: &BTreeMap<String, u64>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in lives {
        if l.stop.is_none() && !killed.contains_key(&l.address) {
            out.entry(l.identity.clone())
                .or_default()
                .push(l.address.clone());
        }
    }
    out
}

/// One overlap of two activations of an identity: the later one started at `start` (µs)
/// while the earlier one still served, for `window` µs (until the first of the two served
/// its last message; one still serving counts until `end`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// The identity that was two actors.
    pub identity: String,
    /// When the later activation started (µs).
    pub start: u64,
    /// How long both served (µs).
    pub window: u64,
}

/// The overlaps in `lives` with their windows (see [`overlaps`] for `killed`), an activation
/// still serving counting until `end` (µs).
pub fn overlap_windows(lives: &[Life], killed: &BTreeMap<String, u64>, end: u64) -> Vec<Overlap> {
    overlapping(lives, killed)
        .into_iter()
        .map(|(a, b)| {
            let until = a
                .served_until(killed)
                .min(b.served_until(killed))
                .min(end)
                .max(b.start);
            Overlap {
                identity: b.identity.clone(),
                start: b.start,
                window: until - b.start,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn life(id: &str, at: &str, start: u64, last: Option<u64>) -> Life {
        Life {
            identity: id.into(),
            address: at.into(),
            pid: format!("p{start}"),
            start,
            last,
            stop: last.map(|l| l + 1),
        }
    }

    #[test]
    fn overlaps_are_activations_that_served_while_a_successor_lived() {
        let none = BTreeMap::new();
        // Served until 10, successor from 20: fine. Served until 25: overlap.
        assert!(overlaps(
            &[life("x", "a", 1, Some(10)), life("x", "b", 20, None)],
            &none
        )
        .is_empty());
        assert_eq!(
            overlaps(
                &[life("x", "a", 1, Some(25)), life("x", "b", 20, None)],
                &none
            )
            .len(),
            1
        );
        // Never stopped: serving still, unless its member was killed before the successor.
        let two = [life("x", "a", 1, None), life("x", "b", 20, None)];
        assert_eq!(overlaps(&two, &none).len(), 1);
        let killed = BTreeMap::from([("a".to_string(), 15)]);
        assert!(overlaps(&two, &killed).is_empty());
        let late = BTreeMap::from([("a".to_string(), 30)]);
        assert_eq!(overlaps(&two, &late).len(), 1);
        // Other identities never overlap each other.
        assert!(overlaps(&[life("x", "a", 1, None), life("y", "b", 2, None)], &none).is_empty());
    }

    #[test]
    fn overlap_windows_last_until_the_first_of_the_two_stops_serving() {
        let none = BTreeMap::new();
        // a serves until 25, b from 20 until 40: 5 µs at once.
        let w = overlap_windows(
            &[life("x", "a", 1, Some(25)), life("x", "b", 20, Some(40))],
            &none,
            100,
        );
        assert_eq!(
            w,
            vec![Overlap {
                identity: "x".into(),
                start: 20,
                window: 5
            }]
        );
        // Both still serving: until `end`; b stopped before a: until b's last message.
        let w = overlap_windows(
            &[life("x", "a", 1, None), life("x", "b", 20, None)],
            &none,
            70,
        );
        assert_eq!(w[0].window, 50);
        let w = overlap_windows(
            &[life("x", "a", 1, None), life("x", "b", 20, Some(30))],
            &none,
            70,
        );
        assert_eq!(w[0].window, 10);
        // Alive: not stopped, member not killed.
        let two = [life("x", "a", 1, None), life("x", "b", 20, Some(30))];
        assert_eq!(alive(&two, &none)["x"], vec!["a".to_string()]);
        let killed = BTreeMap::from([("a".to_string(), 15)]);
        assert!(alive(&two, &killed).is_empty());
        // No overlap: no window.
        assert!(overlap_windows(
            &[life("x", "a", 1, Some(10)), life("x", "b", 20, None)],
            &none,
            70
        )
        .is_empty());
    }

    #[test]
    fn logs_are_read_across_files() {
        let dir = crate::paths::scratch_dir().join(format!("actlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.log"), dir.join("b.log"));
        std::fs::write(&a, "start x h:1 p/x$1 5\nstop x h:1 p/x$1 9 11\ngarbage\n").unwrap();
        std::fs::write(&b, "start x h:2 p/x$7 20\n").unwrap();
        let lives = read_lives(&[a, b, dir.join("missing.log")]);
        assert_eq!(lives.len(), 2);
        assert_eq!(lives[0].last, Some(9));
        assert_eq!(lives[0].stop, Some(11));
        assert_eq!(lives[1].stop, None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
