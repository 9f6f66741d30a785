//! A per-thread cache of freed node allocations.
//!
//! Memory reclamation frees nodes in bursts (every batch whose grace period ended, at once),
//! which overflows the system allocator's own per-thread cache and sends the next allocations
//! down its slow path: with glibc, a quarter of an insert/remove mix's instructions went to
//! `malloc` and `free`. Keeping freed blocks per layout on each thread, up to [`BIN_BYTES`] of
//! them, absorbs a burst; beyond that, blocks go back to the global allocator. Blocks are plain
//! memory of the node's layout from the global allocator, so any thread may free what another
//! cached.
//!
//! Under loom the cache is compiled out (each model thread would need its own).

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;

/// Bytes of freed blocks kept per layout per thread (but at least [`MIN_BLOCKS`] blocks):
/// enough for the nodes a thread frees between two refreshes of a pinned handle in a
/// write-heavy loop (512 operations), at a cost of 64 KiB per thread and node type at most.
#[cfg(not(loom))]
const BIN_BYTES: usize = 64 * 1024;

/// The fewest blocks a bin keeps, for large nodes.
#[cfg(not(loom))]
const MIN_BLOCKS: usize = 64;

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
    use super::{BIN_BYTES, MIN_BLOCKS};
    use std::alloc::{Layout, dealloc};
    use std::cell::Cell;
    use std::ptr::{self, NonNull};

    /// Layouts cached per thread (a program has few node layouts); blocks of further layouts go
    /// straight to the global allocator.
    const BINS: usize = 4;

    /// The free blocks of one layout, as a stack linked through the blocks themselves (each
    /// free block's first word points to the next), so that a bin costs no memory of its own
    /// and taking or keeping a block is a few loads and stores.
    struct Bin {
        /// The layout's size, or 0 while the bin is unclaimed (node layouts are never empty).
        size: Cell<usize>,
        align: Cell<usize>,
        /// The top block, or null.
        head: Cell<*mut u8>,
        /// Blocks on the stack, and how many it may hold.
        len: Cell<usize>,
        limit: Cell<usize>,
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

    impl Bin {
        /// Pops a block.
        #[inline]
        fn pop(&self) -> Option<NonNull<u8>> {
            let block = NonNull::new(self.head.get())?;
            // Safety: a free block of this bin, at least a pointer large and aligned (checked
            // when the bin was claimed), whose first word `push` wrote.
            self.head.set(unsafe { block.cast::<*mut u8>().read() });
            self.len.set(self.len.get() - 1);
            Some(block)
        }

        /// Pushes `block`, or hands it back if the bin is full.
        #[inline]
        fn push(&self, block: NonNull<u8>) -> Option<NonNull<u8>> {
            if self.len.get() == self.limit.get() {
                return Some(block);
            }
            // Safety: an unused block of this bin's layout (the caller's contract), at least a
            // pointer large and aligned.
            unsafe { block.cast::<*mut u8>().write(self.head.get()) };
            self.head.set(block.as_ptr());
            self.len.set(self.len.get() + 1);
            None
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
                while let Some(block) = bin.pop() {
                    // Safety: cached blocks are unused global-allocator blocks of the bin's
                    // layout, rebuilt from the size and alignment it was claimed with.
                    unsafe { dealloc(block.as_ptr(), layout) };
                }
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
                        head: Cell::new(ptr::null_mut()),
                        len: Cell::new(0),
                        limit: Cell::new(0),
                    }
                }; BINS],
            }
        };
    }

    #[inline]
    pub(super) fn take(layout: Layout) -> Option<NonNull<u8>> {
        CACHE
            .try_with(|cache| cache.bin(layout)?.pop())
            .ok()
            .flatten()
    }

    /// Keeps `block` if there is room; hands it back otherwise (or while the thread exits).
    #[inline]
    pub(super) fn keep(block: NonNull<u8>, layout: Layout) -> Option<NonNull<u8>> {
        CACHE
            .try_with(|cache| match cache.bin(layout) {
                Some(bin) => bin.push(block),
                None => match claim(cache, layout) {
                    Some(bin) => bin.push(block),
                    None => Some(block),
                },
            })
            .unwrap_or(Some(block))
    }

    /// Claims an unused bin for `layout`, if one is left and its blocks can hold the link.
    #[cold]
    fn claim(cache: &Cache, layout: Layout) -> Option<&Bin> {
        if layout.size() < size_of::<*mut u8>() || layout.align() < align_of::<*mut u8>() {
            return None;
        }
        let bin = cache.bins.iter().find(|bin| bin.size.get() == 0)?;
        bin.size.set(layout.size());
        bin.align.set(layout.align());
        bin.limit.set((BIN_BYTES / layout.size()).max(MIN_BLOCKS));
        Some(bin)
    }
}
