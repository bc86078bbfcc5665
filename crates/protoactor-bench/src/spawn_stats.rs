//! Per-thread counts of one `spawn` / `spawn-root` round (the opt-in `spawn-stats` feature;
//! without it every function here is empty and [`Born`] has no size): what each thread
//! (the main thread, each tokio worker) spawned, started, ran and stopped, the blocks it
//! allocated and freed, and how many of its frees were of a block from another glibc arena
//! than its own (a free that takes another arena's lock: each worker allocates from an
//! arena of its own, so these are the frees of blocks another worker allocated). The
//! workload prints them to stderr after its round, with tokio's per-worker busy time and
//! park counts (BENCHMARKS.md, "Issue 29 item 7: what picks spawn's slow mode").

#[cfg(feature = "spawn-stats")]
pub use on::*;

/// A thread's slot (the order in which threads first counted something); without the
/// feature, nothing (no size).
#[cfg(not(feature = "spawn-stats"))]
#[derive(Clone, Copy)]
pub struct Born;

/// This thread's slot ([`Born`]).
#[cfg(not(feature = "spawn-stats"))]
#[inline(always)]
pub fn slot() -> Born {
    Born
}

/// Counts `_ev` on this thread.
#[cfg(not(feature = "spawn-stats"))]
#[inline(always)]
pub fn count(_ev: Ev) {}

/// Counts `_ev` on this thread, and `_away` too if this thread is not `_born`'s.
#[cfg(not(feature = "spawn-stats"))]
#[inline(always)]
pub fn count_where(_ev: Ev, _away: Ev, _born: Born) {}

/// The protoactor-rs rows' actor system: with the feature, `SPAWN_STATS_WORKERS=n` gives
/// its runtime `n` workers (1: no stealing and no block freed on another thread, as actix's
/// one thread), for comparing a round's counts and CPU time at 1 and 2 workers.
pub fn system() -> protoactor::ActorSystem {
    #[cfg(feature = "spawn-stats")]
    if let Some(n) = std::env::var("SPAWN_STATS_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return protoactor::ActorSystem::with_config(
            protoactor::Config::default().with_worker_threads(n),
        );
    }
    protoactor::ActorSystem::new()
}

/// What is counted per thread.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // the allocator's events are counted with the feature only
pub enum Ev {
    /// A block allocated.
    Alloc,
    /// A block freed.
    Free,
    /// A block freed that lies in another glibc arena than this thread's.
    ForeignFree,
    /// A node spawned (a child, or the top from the driver).
    Spawned,
    /// A node's `Started`.
    Started,
    /// ... on another thread than the one that spawned it.
    StartedAway,
    /// A node's request (`TreeReq`).
    Request,
    /// A reply (a child's sum) at its parent.
    Reply,
    /// A node's `Stopped` (its context and actor are freed after it, on this thread).
    Stopped,
    /// ... on another thread than the one that spawned it.
    StoppedAway,
    /// A child's `Terminated` at its parent (its PID leaves the parent's children set).
    Terminated,
    /// ... on another thread than the one that spawned the child.
    TerminatedAway,
    /// Every message a node's `receive` saw.
    Msgs,
}

#[cfg(feature = "spawn-stats")]
mod on {
    // Reads glibc's chunk header and heap header (see `arena_of`).
    #![allow(unsafe_code)]

    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
    use std::sync::Mutex;

    use super::Ev;

    const EVENTS: usize = Ev::Msgs as usize + 1;
    const SLOTS: usize = 16;
    /// Names of the events, in `Ev` order.
    const NAMES: [&str; EVENTS] = [
        "alloc", "free", "foreign", "spawned", "started", "st-away", "request", "reply", "stopped",
        "sp-away", "term", "tm-away", "msgs",
    ];

    /// One thread's counters, on cache lines of their own.
    #[repr(align(128))]
    struct Slot([AtomicU64; EVENTS]);

    static TABLE: [Slot; SLOTS] = [const { Slot([const { AtomicU64::new(0) }; EVENTS]) }; SLOTS];
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    /// Foreign frees by the block's size (8-byte steps up to 256; the last bucket is larger
    /// blocks), per slot.
    const SIZES: usize = 33;
    #[repr(align(128))]
    struct BySize([AtomicU64; SIZES]);
    static FOREIGN_BY_SIZE: [BySize; SLOTS] =
        [const { BySize([const { AtomicU64::new(0) }; SIZES]) }; SLOTS];
    /// Each slot's arena (as `ARENA`), for the report.
    static ARENAS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(usize::MAX) }; SLOTS];
    static THREAD_NAMES: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());

    thread_local! {
        // `const`, no destructor: usable inside the allocator, at any time of a thread's life.
        static ME: Cell<usize> = const { Cell::new(usize::MAX) };
        static ARENA: Cell<usize> = const { Cell::new(usize::MAX) };
        static NAMED: Cell<bool> = const { Cell::new(false) };
    }

    /// A thread's slot.
    pub type Born = usize;

    /// This thread's slot (taken at its first count; threads past the 16th share the last).
    #[inline]
    pub fn slot() -> Born {
        ME.try_with(|m| match m.get() {
            usize::MAX => {
                let s = NEXT.fetch_add(1, Relaxed).min(SLOTS - 1);
                m.set(s);
                s
            }
            s => s,
        })
        .unwrap_or(SLOTS - 1)
    }

    #[inline]
    fn bump(s: usize, ev: Ev) {
        TABLE[s].0[ev as usize].fetch_add(1, Relaxed);
    }

    /// Counts `ev` on this thread (an actor's event: names the thread on its first one).
    pub fn count(ev: Ev) {
        let s = slot();
        if !NAMED.replace(true) {
            let name = std::thread::current().name().unwrap_or("?").to_string();
            THREAD_NAMES.lock().unwrap().push((s, name));
        }
        bump(s, ev);
    }

    /// Counts `ev` on this thread, and `away` too if this thread is not `born`'s.
    pub fn count_where(ev: Ev, away: Ev, born: Born) {
        count(ev);
        if slot() != born {
            bump(slot(), away);
        }
    }

    /// glibc (64-bit): a non-main arena's heaps are 64 MiB-aligned mappings of at most
    /// 64 MiB (`HEAP_MAX_SIZE`, twice the largest mmap threshold), each starting with its
    /// `heap_info`, whose first field is the arena.
    const HEAP_MAX: usize = 64 << 20;
    /// glibc's chunk size flags: the chunk is its own mapping; the chunk is not the main
    /// arena's.
    const IS_MMAPPED: usize = 2;
    const NON_MAIN_ARENA: usize = 4;

    /// The glibc arena of the live block `p` (0 for the main arena), or `None` for a block
    /// that is its own mapping.
    ///
    /// # Safety
    /// `p` is a live block that glibc's `malloc` family returned (the system allocator's:
    /// not mimalloc's).
    unsafe fn arena_of(p: *mut u8) -> Option<usize> {
        // The compiler knows `malloc`'s blocks: a plain read before one is out of its bounds
        // to it, and was folded away. Hidden and volatile, the read is made as written.
        let p = std::hint::black_box(p);
        // SAFETY: glibc puts a chunk's size word right before the block it returns (also
        // for `posix_memalign`, whose block starts a chunk of its own), readable while the
        // block is live.
        let size = unsafe { p.cast::<usize>().sub(1).read_volatile() };
        if size & IS_MMAPPED != 0 {
            return None;
        }
        if size & NON_MAIN_ARENA == 0 {
            return Some(0);
        }
        let heap = (p as usize) & !(HEAP_MAX - 1);
        // SAFETY: a chunk of a non-main arena lies in a heap mapping aligned to `HEAP_MAX`
        // that starts with its `heap_info` (see `HEAP_MAX`), mapped while the chunk is.
        Some(unsafe { (heap as *const usize).read_volatile() })
    }

    /// After the system allocator returned a block: counts it, and finds this thread's
    /// arena at its first one. Not from that block: glibc's per-thread cache (tcache) hands a
    /// thread back the blocks it freed, whichever arena they are from (a thread's first free
    /// may come before its first allocation), and `realloc` keeps a block in its arena; a
    /// block past tcache's sizes (over 1,032 bytes) comes from the thread's own arena.
    pub fn on_alloc() {
        if ARENA.try_with(Cell::get) == Ok(usize::MAX) {
            // SAFETY: `malloc` has no precondition; the block is freed right after.
            let probe = unsafe { libc::malloc(4096) }.cast::<u8>();
            if !probe.is_null() {
                // SAFETY: `probe` is a live block of glibc's `malloc`.
                if let Some(a) = unsafe { arena_of(probe) } {
                    let _ = ARENA.try_with(|c| c.set(a));
                    ARENAS[slot()].store(a, Relaxed);
                }
                // SAFETY: `probe` came from `malloc` and is freed once.
                unsafe { libc::free(probe.cast()) };
            }
        }
        bump(slot(), Ev::Alloc);
    }

    /// Before the system allocator frees the block `p`: counts it, and as foreign if it
    /// lies in another arena than this thread's (its first block's).
    ///
    /// # Safety
    /// As for [`arena_of`].
    pub unsafe fn on_free(p: *mut u8, size: usize) {
        let s = slot();
        bump(s, Ev::Free);
        let mine = ARENA.try_with(Cell::get).unwrap_or(usize::MAX);
        // SAFETY: the caller's.
        if let Some(a) = unsafe { arena_of(p) } {
            if mine != usize::MAX && a != mine {
                bump(s, Ev::ForeignFree);
                FOREIGN_BY_SIZE[s].0[size.div_ceil(8).min(SIZES - 1)].fetch_add(1, Relaxed);
            }
        }
    }

    /// Every slot's counters now.
    pub fn snapshot() -> Vec<[u64; EVENTS]> {
        TABLE
            .iter()
            .map(|s| std::array::from_fn(|i| s.0[i].load(Relaxed)))
            .collect()
    }

    /// Prints, to stderr, what each thread counted since `before` (one line per thread that
    /// counted something), then tokio's per-worker figures since `rt_before`.
    pub fn report(
        label: &str,
        took: std::time::Duration,
        before: &[[u64; EVENTS]],
        rt: &tokio::runtime::Handle,
        rt_before: &RuntimeSnapshot,
    ) {
        let now = snapshot();
        let names = THREAD_NAMES.lock().unwrap().clone();
        eprintln!("STATS {label} ms={}", took.as_millis());
        let mut header = String::from("STATS   slot thread          ");
        for n in NAMES {
            header.push_str(&format!(" {n:>9}"));
        }
        eprintln!("{header}");
        for (s, (a, b)) in now.iter().zip(before).enumerate() {
            if a.iter().zip(b).all(|(x, y)| x == y) {
                continue;
            }
            let name = names
                .iter()
                .find(|(i, _)| *i == s)
                .map_or("-", |(_, n)| n.as_str());
            let mut line = format!("STATS   {s:>4} {name:<16.16}");
            let arena = ARENAS[s].load(Relaxed);
            for i in 0..EVENTS {
                line.push_str(&format!(" {:>9}", a[i] - b[i]));
            }
            line.push_str(&format!(" arena {arena:x}"));
            eprintln!("{line}");
        }
        let mut by_size = String::from("STATS   foreign frees by size (B: count, since start):");
        for b in 0..SIZES {
            let c: u64 = FOREIGN_BY_SIZE.iter().map(|s| s.0[b].load(Relaxed)).sum();
            if c > 10_000 {
                by_size.push_str(&format!(" {}: {c}", b * 8));
            }
        }
        eprintln!("{by_size}");
        let m = rt.metrics();
        let (u, b) = (usage(), rt_before.usage);
        eprintln!(
            "STATS   process: cpu {} ms, voluntary switches {}, involuntary {}, minor faults {}",
            (u[1] - b[1]) / 1000,
            u[0] - b[0],
            u[2] - b[2],
            u[3] - b[3]
        );
        for (w, (parks, busy)) in rt_before.workers.iter().enumerate() {
            eprintln!(
                "STATS   worker {w}: parks {} busy {} ms",
                m.worker_park_count(w) - parks,
                (m.worker_total_busy_duration(w) - *busy).as_millis()
            );
        }
    }

    /// What [`report`] subtracts: tokio's per-worker park counts and busy time, and the
    /// process's `usage()`.
    pub struct RuntimeSnapshot {
        workers: Vec<(u64, std::time::Duration)>,
        usage: [u64; 4],
    }

    /// The [`RuntimeSnapshot`] of now.
    pub fn runtime_snapshot(rt: &tokio::runtime::Handle) -> RuntimeSnapshot {
        let m = rt.metrics();
        RuntimeSnapshot {
            workers: (0..m.num_workers())
                .map(|w| (m.worker_park_count(w), m.worker_total_busy_duration(w)))
                .collect(),
            usage: usage(),
        }
    }

    /// The process's voluntary context switches, user+system CPU µs, involuntary switches
    /// and minor faults.
    fn usage() -> [u64; 4] {
        // SAFETY: `getrusage` writes the struct it is given, which lives on this stack.
        let mut r: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above; `RUSAGE_SELF` is a valid `who`.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) };
        let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        [
            r.ru_nvcsw as u64,
            us(r.ru_utime) + us(r.ru_stime),
            r.ru_nivcsw as u64,
            r.ru_minflt as u64,
        ]
    }
}

#[cfg(all(test, feature = "spawn-stats"))]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    fn foreign_here() -> u64 {
        snapshot()[slot()][Ev::ForeignFree as usize]
    }

    /// A block freed by the thread that allocated it is not foreign; a block another live
    /// thread allocated (from its own arena) is. Blocks of 2,000 bytes: past glibc's
    /// per-thread cache, so each comes from its thread's arena.
    #[test]
    fn a_block_of_another_threads_arena_is_a_foreign_free() {
        let (to_b, from_a) = channel::<Vec<u8>>();
        let (done, wait_b) = channel::<()>();
        let b = std::thread::spawn(move || {
            drop(std::hint::black_box(vec![1u8; 2000])); // this thread's arena is known
            let before = foreign_here();
            drop(std::hint::black_box(vec![2u8; 2000]));
            let own = foreign_here() - before;
            let theirs = from_a.recv().unwrap();
            let before = foreign_here();
            drop(theirs);
            let other = foreign_here() - before;
            done.send(()).unwrap();
            (own, other)
        });
        // Thread A stays alive until B has freed its block, so its arena is not B's.
        let a = std::thread::spawn(move || {
            to_b.send(std::hint::black_box(vec![3u8; 2000])).unwrap();
            wait_b.recv().unwrap();
        });
        let (own, other) = b.join().unwrap();
        a.join().unwrap();
        assert_eq!((own, other), (0, 1));
    }
}
