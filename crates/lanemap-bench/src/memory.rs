//! A counting global allocator, to measure what a map really allocates. (lanemap's `HashMap`
//! maps tables of 1 MiB and more straight from the kernel; the memory trial adds
//! `lanemap::mapped_table_bytes` for those.)
//!
//! Counting is off by default and switched on per thread, so the other threads of the process
//! (and the throughput trials, where a shared counter would add contention) pay only a
//! thread-local flag check per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

/// Bytes allocated minus bytes freed by counting threads.
static LIVE: AtomicI64 = AtomicI64::new(0);

thread_local! {
    /// Whether this thread's allocations are counted. `const` and `Drop`-free, so reading it
    /// from inside the allocator never allocates or touches a destroyed slot.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

/// The system allocator, with byte counting for threads that asked for it.
pub struct CountingAlloc;

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

fn add(delta: i64) {
    if counting() {
        // Relaxed: a plain tally, read by the same thread after its own updates.
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

// Safety: every method forwards to `System` with the caller's arguments unchanged, so it keeps
// `System`'s guarantees; the counting on the side never touches the memory.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Safety: the caller's contract for `alloc` is passed on unchanged.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            add(layout.size() as i64);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Safety: the caller's contract for `alloc_zeroed` is passed on unchanged.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            add(layout.size() as i64);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: `ptr` was allocated by `System` (through this allocator) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Safety: the caller's contract for `realloc` is passed on unchanged.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            add(new_size as i64 - layout.size() as i64);
        }
        new
    }
}

/// Starts counting this thread's allocations; returns the current tally to subtract later.
pub fn start_counting() -> i64 {
    COUNTING.with(|c| c.set(true));
    live_bytes()
}

/// Stops counting this thread's allocations.
pub fn stop_counting() {
    COUNTING.with(|c| c.set(false));
}

/// The tally of bytes allocated and not yet freed by counting threads.
pub fn live_bytes() -> i64 {
    LIVE.load(Ordering::Relaxed)
}
