//! A small per-thread cache of freed node allocations.
//!
//! Memory reclamation frees nodes in bursts (a batch of retired nodes at a time), which
//! overflows the system allocator's own per-thread cache and sends the next allocations down its
//! slow path. Keeping up to [`CAPACITY`] freed blocks per layout on each thread absorbs a burst;
//! beyond that, blocks go back to the global allocator. Blocks are plain memory of the node's
//! layout from the global allocator, so any thread may free what another cached.
//!
//! Under loom the cache is compiled out (each model thread would need its own).

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;

/// Freed blocks kept per layout per thread.
#[cfg(not(loom))]
const CAPACITY: usize = 128;

/// Allocates a block of `layout` (non-zero size).
#[inline]
pub(crate) fn allocate(layout: Layout) -> NonNull<u8> {
    debug_assert!(layout.size() > 0);
    #[cfg(not(loom))]
    if let Some(block) = cache::take(layout) {
        return block;
    }
    // Safety: `layout` has a non-zero size (nodes hold at least their hash).
    let block = unsafe { alloc(layout) };
    NonNull::new(block).unwrap_or_else(|| handle_alloc_error(layout))
}

/// Gives back a block from [`allocate`] with the same `layout`; its contents are already dropped.
///
/// # Safety
/// `block` came from [`allocate`] with `layout` and is not used after this call.
#[inline]
pub(crate) unsafe fn release(block: NonNull<u8>, layout: Layout) {
    #[cfg(not(loom))]
    let Some(block) = cache::keep(block, layout) else {
        return;
    };
    // Safety: allocated by the global allocator with this layout (the caller's contract).
    unsafe { dealloc(block.as_ptr(), layout) };
}

#[cfg(not(loom))]
mod cache {
    use super::CAPACITY;
    use std::alloc::{Layout, dealloc};
    use std::cell::RefCell;
    use std::ptr::NonNull;

    /// One thread's blocks, by layout (a program has few node layouts).
    struct Cache {
        by_layout: Vec<(Layout, Vec<NonNull<u8>>)>,
    }

    impl Drop for Cache {
        fn drop(&mut self) {
            for (layout, blocks) in self.by_layout.drain(..) {
                for block in blocks {
                    // Safety: cached blocks are unused global-allocator blocks of `layout`.
                    unsafe { dealloc(block.as_ptr(), layout) };
                }
            }
        }
    }

    // Thread-confined (never shared between threads), so a plain `RefCell` is right here; the
    // sync shim's loom types do not apply because the cache is compiled out under loom.
    std::thread_local! {
        static CACHE: RefCell<Cache> = const { RefCell::new(Cache { by_layout: Vec::new() }) };
    }

    pub(super) fn take(layout: Layout) -> Option<NonNull<u8>> {
        CACHE
            .try_with(|cache| {
                let mut cache = cache.try_borrow_mut().ok()?;
                let (_, blocks) = cache.by_layout.iter_mut().find(|(l, _)| *l == layout)?;
                blocks.pop()
            })
            .ok()
            .flatten()
    }

    /// Keeps `block` if there is room; hands it back otherwise (or while the thread exits).
    pub(super) fn keep(block: NonNull<u8>, layout: Layout) -> Option<NonNull<u8>> {
        CACHE
            .try_with(|cache| {
                let Ok(mut cache) = cache.try_borrow_mut() else {
                    return Some(block);
                };
                let index = match cache.by_layout.iter().position(|(l, _)| *l == layout) {
                    Some(index) => index,
                    None => {
                        cache.by_layout.push((layout, Vec::new()));
                        cache.by_layout.len() - 1
                    }
                };
                let blocks = &mut cache.by_layout[index].1;
                if blocks.len() == CAPACITY {
                    return Some(block);
                }
                blocks.push(block);
                None
            })
            .unwrap_or(Some(block))
    }
}
