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
    use std::cell::Cell;
    use std::ptr::{self, NonNull};

    /// Layouts cached per thread (a program has few node layouts); blocks of further layouts go
    /// straight to the global allocator.
    const BINS: usize = 4;

    /// The blocks of one layout: a fixed stack, so taking and keeping one is a few loads and
    /// stores (no borrow flag, no growth check, no search beyond the first bin most of the time).
    struct Bin {
        /// The layout's size, or 0 while the bin is unclaimed (node layouts are never empty).
        size: Cell<usize>,
        align: Cell<usize>,
        /// `blocks[..len]` are cached blocks of the bin's layout.
        len: Cell<usize>,
        blocks: [Cell<*mut u8>; CAPACITY],
    }

    /// One thread's bins.
    struct Cache {
        bins: [Bin; BINS],
    }

    impl Cache {
        /// The bin holding `layout`'s blocks, if one was claimed for it.
        #[inline]
        fn bin(&self, layout: Layout) -> Option<&Bin> {
            self.bins
                .iter()
                .find(|bin| bin.size.get() == layout.size() && bin.align.get() == layout.align())
        }
    }

    impl Drop for Cache {
        fn drop(&mut self) {
            for bin in &self.bins {
                let size = bin.size.get();
                if size == 0 {
                    continue;
                }
                let Ok(layout) = Layout::from_size_align(size, bin.align.get()) else {
                    continue;
                };
                for block in &bin.blocks[..bin.len.get()] {
                    // Safety: cached blocks are unused global-allocator blocks of the bin's
                    // layout, rebuilt from the size and alignment it was claimed with.
                    unsafe { dealloc(block.get(), layout) };
                }
                bin.len.set(0);
            }
        }
    }

    // Thread-confined (never shared between threads), so plain `Cell`s are right here; the sync
    // shim's loom types do not apply because the cache is compiled out under loom. No reference
    // into the cache outlives a call, and nothing here calls out while touching it, so no access
    // can overlap another.
    std::thread_local! {
        static CACHE: Cache = const {
            Cache {
                bins: [const {
                    Bin {
                        size: Cell::new(0),
                        align: Cell::new(0),
                        len: Cell::new(0),
                        blocks: [const { Cell::new(ptr::null_mut()) }; CAPACITY],
                    }
                }; BINS],
            }
        };
    }

    #[inline]
    pub(super) fn take(layout: Layout) -> Option<NonNull<u8>> {
        CACHE
            .try_with(|cache| {
                let bin = cache.bin(layout)?;
                let len = bin.len.get().checked_sub(1)?;
                bin.len.set(len);
                NonNull::new(bin.blocks[len].get())
            })
            .ok()
            .flatten()
    }

    /// Keeps `block` if there is room; hands it back otherwise (or while the thread exits).
    #[inline]
    pub(super) fn keep(block: NonNull<u8>, layout: Layout) -> Option<NonNull<u8>> {
        CACHE
            .try_with(|cache| {
                let bin = match cache.bin(layout) {
                    Some(bin) => bin,
                    None => claim(cache, layout)?,
                };
                let len = bin.len.get();
                if len == CAPACITY {
                    return None;
                }
                bin.blocks[len].set(block.as_ptr());
                bin.len.set(len + 1);
                Some(())
            })
            .ok()
            .flatten()
            .map_or(Some(block), |()| None)
    }

    /// Claims an unused bin for `layout`, if one is left.
    #[cold]
    fn claim(cache: &Cache, layout: Layout) -> Option<&Bin> {
        let bin = cache.bins.iter().find(|bin| bin.size.get() == 0)?;
        bin.size.set(layout.size());
        bin.align.set(layout.align());
        Some(bin)
    }
}
