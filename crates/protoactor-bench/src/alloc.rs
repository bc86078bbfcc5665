//! The child process's allocator: the system allocator (glibc malloc on Linux), which can
//! count the live heap bytes and give its free pages back to the OS, so the `idle-memory`
//! rows of the Rust implementations read what protoactor-go's read: the resident set after
//! `debug.FreeOSMemory()` and the live heap (`HeapAlloc`).
//!
//! Counting is off unless [`start_counting`] is called first thing in the process (only
//! the `idle-memory` child does): the other rows pay one relaxed load of a flag per call.
//!
//! With the crate's opt-in `mimalloc` feature the harness gets one more implementation,
//! `protoactor-rs-mimalloc`: the same protoactor-rs code, whose child process calls
//! [`use_mimalloc`] first thing, so that from then on its blocks come from mimalloc (what a
//! user gets with `#[global_allocator] static A: mimalloc::MiMalloc = mimalloc::MiMalloc;`).
//! Every other row, in the same binary, stays on the system allocator: the two protoactor-rs
//! rows of one run differ by the allocator alone (BENCHMARKS.md gives the measured effect).
//! A block is freed by the allocator that owns it (`mi_is_in_heap_region`), so the few
//! blocks allocated before the switch stay valid.

// The two exceptions to the crate's no-unsafe rule live here, each with its proof.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};

use std::alloc::System;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Set once by [`use_mimalloc`], never cleared.
#[cfg(feature = "mimalloc")]
static MIMALLOC: AtomicBool = AtomicBool::new(false);

/// From now on, new blocks come from mimalloc (the `protoactor-rs-mimalloc` child).
#[cfg(feature = "mimalloc")]
pub fn use_mimalloc() {
    MIMALLOC.store(true, Relaxed);
}

#[inline]
fn new_blocks_from_mimalloc() -> bool {
    #[cfg(feature = "mimalloc")]
    return MIMALLOC.load(Relaxed);
    #[cfg(not(feature = "mimalloc"))]
    false
}

/// Whether the block at `ptr` came from mimalloc (only possible after [`use_mimalloc`]).
#[inline]
fn owned_by_mimalloc(ptr: *mut u8) -> bool {
    #[cfg(feature = "mimalloc")]
    // SAFETY: `mi_is_in_heap_region` only compares the address with mimalloc's own map of
    // the regions it reserved; it never dereferences `ptr`.
    return new_blocks_from_mimalloc()
        && unsafe { libmimalloc_sys::mi_is_in_heap_region(ptr.cast()) };
    #[cfg(not(feature = "mimalloc"))]
    {
        let _ = ptr;
        false
    }
}

/// The system allocator (or mimalloc, see the module's documentation), counting the bytes
/// it hands out and takes back while counting is on.
pub struct CountingAlloc;

fn add(bytes: isize) {
    if COUNTING.load(Relaxed) {
        LIVE.fetch_add(bytes, Relaxed);
    }
}

// SAFETY: every method forwards its arguments unchanged to one inner allocator (`System`,
// or mimalloc once `use_mimalloc` was called), each of which implements `GlobalAlloc`
// soundly, and returns its result unchanged. A block is freed or reallocated by the one
// that allocated it: mimalloc's blocks lie in regions it reserved (`mi_is_in_heap_region`
// is true for them and for no block of the system allocator's). The bookkeeping around it
// touches only atomics and never allocates, so the trait's contract (valid layouts in,
// blocks of that layout out, no unwinding) is the inner allocators' own.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = if new_blocks_from_mimalloc() {
            mi_alloc(layout)
        } else {
            // SAFETY: the caller guarantees `layout` has a non-zero size, as `System` requires.
            let p = unsafe { System.alloc(layout) };
            system_allocated(p);
            p
        };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = if new_blocks_from_mimalloc() {
            mi_alloc_zeroed(layout)
        } else {
            // SAFETY: as for `alloc`.
            let p = unsafe { System.alloc_zeroed(layout) };
            system_allocated(p);
            p
        };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if owned_by_mimalloc(ptr) {
            mi_dealloc(ptr, layout);
        } else {
            system_freeing(ptr, layout.size());
            // SAFETY: the caller guarantees `ptr` came from this allocator with `layout`, and
            // not from mimalloc, so from `System`.
            unsafe { System.dealloc(ptr, layout) };
        }
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = if owned_by_mimalloc(ptr) {
            mi_realloc(ptr, layout, new_size)
        } else {
            system_freeing(ptr, layout.size());
            // SAFETY: the caller's guarantees for `ptr`, `layout` and `new_size` are `System`'s
            // (the block is not mimalloc's, so it is `System`'s).
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            system_allocated(p);
            p
        };
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// The `spawn-stats` feature's count of a block `System` returned (`p`, null if it failed).
#[inline(always)]
fn system_allocated(p: *mut u8) {
    #[cfg(feature = "spawn-stats")]
    if !p.is_null() {
        crate::spawn_stats::on_alloc()
    }
    #[cfg(not(feature = "spawn-stats"))]
    let _ = p;
}

/// The `spawn-stats` feature's count of a block of `System`'s (`p`, of `size` bytes) about
/// to be freed.
#[inline(always)]
fn system_freeing(p: *mut u8, size: usize) {
    #[cfg(feature = "spawn-stats")]
    // SAFETY: `p` is a live block of `System`, glibc's malloc on this target.
    unsafe {
        crate::spawn_stats::on_free(p, size)
    }
    #[cfg(not(feature = "spawn-stats"))]
    let _ = (p, size);
}

// mimalloc's side, called only where `CountingAlloc` passes on its caller's guarantees.
#[cfg(feature = "mimalloc")]
fn mi_alloc(layout: Layout) -> *mut u8 {
    // SAFETY: `layout` comes from `GlobalAlloc::alloc`'s caller (non-zero size).
    unsafe { mimalloc::MiMalloc.alloc(layout) }
}
#[cfg(feature = "mimalloc")]
fn mi_alloc_zeroed(layout: Layout) -> *mut u8 {
    // SAFETY: as for `mi_alloc`.
    unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
}
#[cfg(feature = "mimalloc")]
fn mi_dealloc(ptr: *mut u8, layout: Layout) {
    // SAFETY: `ptr` is a live block of mimalloc's (`owned_by_mimalloc`) with `layout`
    // (`GlobalAlloc::dealloc`'s caller).
    unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
}
#[cfg(feature = "mimalloc")]
fn mi_realloc(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    // SAFETY: as for `mi_dealloc`, and `new_size` is `GlobalAlloc::realloc`'s caller's.
    unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
}
#[cfg(not(feature = "mimalloc"))]
fn mi_alloc(_: Layout) -> *mut u8 {
    unreachable!("mimalloc is not built in")
}
#[cfg(not(feature = "mimalloc"))]
fn mi_alloc_zeroed(_: Layout) -> *mut u8 {
    unreachable!("mimalloc is not built in")
}
#[cfg(not(feature = "mimalloc"))]
fn mi_dealloc(_: *mut u8, _: Layout) {
    unreachable!("mimalloc is not built in")
}
#[cfg(not(feature = "mimalloc"))]
fn mi_realloc(_: *mut u8, _: Layout, _: usize) -> *mut u8 {
    unreachable!("mimalloc is not built in")
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
    if new_blocks_from_mimalloc() {
        // SAFETY: `mi_collect` takes no pointer and has no precondition: it frees mimalloc's
        // own unused segments and pages (never an allocated block) and may be called from
        // any thread at any time.
        unsafe {
            libmimalloc_sys::mi_collect(true);
        }
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
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

    /// After the switch new blocks are mimalloc's, and blocks from before it (the system
    /// allocator's) are still freed and grown by the system allocator.
    #[cfg(feature = "mimalloc")]
    #[test]
    fn blocks_from_before_the_switch_to_mimalloc_stay_the_systems() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let mut before = vec![1u8; 100];
        use_mimalloc();
        let after = Box::new([2u8; 100]);
        assert!(owned_by_mimalloc(after.as_ptr().cast_mut()));
        assert!(!owned_by_mimalloc(before.as_ptr().cast_mut()));
        before.resize(1 << 20, 3);
        assert!(!owned_by_mimalloc(before.as_ptr().cast_mut()));
        assert_eq!((before[99], before[1 << 19], after[99]), (1, 3, 2));
    }
}
