//! The child process's allocator: the system allocator (glibc malloc on Linux), which can
//! count the live heap bytes and give its free pages back to the OS, so the `idle-memory`
//! rows of the Rust implementations read what protoactor-go's read: the resident set after
//! `debug.FreeOSMemory()` and the live heap (`HeapAlloc`).
//!
//! Counting is off unless [`start_counting`] is called first thing in the process (only
//! the `idle-memory` child does): the other rows pay one relaxed load of a flag per call.
//!
//! With the crate's opt-in `mimalloc` feature the allocator underneath is mimalloc instead
//! of the system's, for every Rust implementation alike (BENCHMARKS.md gives its measured
//! effect); [`release_free_memory`] then asks mimalloc to return its free pages.

// The two exceptions to the crate's no-unsafe rule live here, each with its proof.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};

#[cfg(feature = "mimalloc")]
use mimalloc::MiMalloc as Inner;
/// The allocator underneath the counting (see the module's documentation).
#[cfg(not(feature = "mimalloc"))]
use std::alloc::System as Inner;
const INNER: Inner = Inner;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// The inner allocator (`System`, or mimalloc with the feature), counting the bytes it
/// hands out and takes back while counting is on.
pub struct CountingAlloc;

fn add(bytes: isize) {
    if COUNTING.load(Relaxed) {
        LIVE.fetch_add(bytes, Relaxed);
    }
}

// SAFETY: every method forwards its arguments unchanged to the inner allocator (`System`
// or mimalloc), which implements `GlobalAlloc` soundly, and returns its result unchanged; the bookkeeping around it
// touches only two atomics and never allocates, so the trait's contract (valid layouts in,
// blocks of that layout out, no unwinding) is the inner allocator's own.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller guarantees `layout` has a non-zero size, as the inner allocator requires.
        let p = unsafe { INNER.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { INNER.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` came from this allocator (so from the inner allocator)
        // with `layout`.
        unsafe { INNER.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's guarantees for `ptr`, `layout` and `new_size` are the inner allocator's.
        let p = unsafe { INNER.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Turns counting on. Call it before anything worth counting is allocated: a block
/// allocated before and freed after would be subtracted without having been added.
pub fn start_counting() {
    COUNTING.store(true, Relaxed);
}

/// Whether [`start_counting`] was called.
pub fn counting() -> bool {
    COUNTING.load(Relaxed)
}

/// Heap bytes allocated minus bytes freed since [`start_counting`] (0 before it); compare
/// two readings.
pub fn live_bytes() -> i64 {
    LIVE.load(Relaxed) as i64
}

/// Gives the allocator's free pages back to the OS, as Go's `debug.FreeOSMemory()` does for
/// Go's heap, so that a resident-set reading counts live memory, not freed memory that glibc
/// keeps for reuse. A no-op where the allocator is not glibc's.
pub fn release_free_memory() {
    #[cfg(feature = "mimalloc")]
    // SAFETY: `mi_collect` takes no pointer and has no precondition: it frees mimalloc's
    // own unused segments and pages (never an allocated block) and may be called from any
    // thread at any time.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
    // SAFETY: `malloc_trim` takes no pointer and has no precondition: it locks each of
    // glibc's arenas in turn and returns whole free pages inside them to the kernel
    // (`madvise(MADV_DONTNEED)` and shrinking the top), never touching an allocated block,
    // so it cannot invalidate any memory the program uses, and it is safe to call from any
    // thread at any time (glibc documents it MT-Safe). There is no safe std equivalent.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    #[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
    use crate::common::proc_status_kb;
    use std::sync::Mutex;

    /// The two tests must not run at once: each one's big blocks would skew the other's. Other
    /// tests of this binary that allocate heavily on several threads (the in-process cluster)
    /// take it too: their heap growth would hide the pages the release test frees.
    pub(crate) static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    #[test]
    fn counts_live_bytes() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        start_counting();
        // Other tests of this binary allocate and free concurrently, which the global count
        // sees too: one of a few attempts must see exactly our 8 MiB (± 1 MiB) come and go.
        let mut seen = Vec::new();
        for _ in 0..10 {
            let before = live_bytes();
            let v = std::hint::black_box(vec![1u8; 8 << 20]);
            let grown = live_bytes() - before;
            drop(v);
            let left = live_bytes() - before;
            if (7 << 20..9 << 20).contains(&grown) && left.abs() < 1 << 20 {
                return;
            }
            seen.push((grown, left));
        }
        panic!("grown and left over per attempt: {seen:?}");
    }

    #[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
    #[test]
    fn release_gives_freed_pages_back() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        // Many small blocks (below glibc's mmap threshold, so they live in the heap), all
        // freed but the last, which pins the heap's top so that free() alone cannot shrink it.
        let mut blocks: Vec<Box<[u8; 1024]>> =
            (0..100_000).map(|_| Box::new([7u8; 1024])).collect();
        let last = blocks.pop();
        drop(blocks);
        let before = proc_status_kb("VmRSS");
        release_free_memory();
        let after = proc_status_kb("VmRSS");
        std::hint::black_box(last);
        // ~100 MiB were freed; at least half of it must leave the resident set.
        assert!(
            before.saturating_sub(after) > 50 * 1024,
            "RSS {before} kB -> {after} kB"
        );
    }
}
