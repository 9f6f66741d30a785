//! Node memory: each shard carves its nodes out of chunks it owns, and reclamation gives the
//! blocks of removed nodes back to the shard they came from.
//!
//! Allocating every node with the global allocator cost a fresh insert about 185 instructions in
//! glibc's `malloc` (and a remove as much again in `free` once reclaimed), and a per-thread cache
//! only helps threads that free as much as they allocate. Here a node is a block of the shard's
//! [`Slab`]: taken from its free list, from blocks reclamation returned, or cut from the current
//! chunk; chunks double from [`FIRST_CHUNK_BLOCKS`] blocks up to [`MAX_CHUNK_BYTES`].
//!
//! ```text
//! shard's Writer (under the lock)        reclamation (any thread, no lock)
//! Slab ── free list, current chunk       batch of nodes: drop them, link their blocks,
//!   │                                     push the chain onto the Pool's `returned`
//!   └─ Pool ── returned: AtomicPtr ◄──────┘ then add their number to `balance`
//!              balance:  AtomicUsize
//!              chunks:   AtomicPtr (chunk list, read by whoever frees)
//! ```
//!
//! When a shard empties it *abandons* its slab and starts a fresh one, so that an emptied map
//! gives its node memory back: the old chunks are freed once the last of their blocks still in
//! a reclamation batch comes home. `balance` decides who frees them: it holds [`OWNED`] plus the
//! blocks returned; abandoning subtracts `OWNED` plus the blocks ever handed out, so it reaches
//! exactly zero when the last block is home, and whoever brings it there (the abandoning shard
//! or the reclaiming thread) frees the pool.

use crate::sync::{AtomicPtr, AtomicUsize, Ordering};
use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::{self, NonNull};

/// Blocks in a slab's first chunk: a small map costs little.
const FIRST_CHUNK_BLOCKS: usize = 16;

/// The largest chunk: 2 MiB, one huge page where the kernel backs it with one.
const MAX_CHUNK_BYTES: usize = 2 << 20;

/// The least alignment of a chunk (more for more-aligned nodes): blocks of up to 64 bytes
/// never straddle a cache line.
const CHUNK_ALIGN: usize = 64;

/// `Pool::balance` while its shard owns the pool (more than any count of blocks).
const OWNED: usize = 1 << (usize::BITS - 2);

/// The head of a chunk: the previous chunk of the pool and this chunk's layout.
struct ChunkHeader {
    previous: *mut ChunkHeader,
    layout: Layout,
}

const _: () = assert!(size_of::<ChunkHeader>() <= CHUNK_ALIGN);

/// What a shard's slab shares with reclamation; freed with its chunks once abandoned and every
/// block is home (see the module docs).
pub(crate) struct Pool {
    /// Blocks reclamation gave back, linked through their first word; the owner takes them all
    /// at once, so the stack has no ABA problem.
    returned: AtomicPtr<u8>,
    /// [`OWNED`] plus blocks returned, minus (once abandoned) blocks handed out; wrapping.
    balance: AtomicUsize,
    /// The newest chunk (each links to the one before). Written by the owner only; read by
    /// whoever frees the pool.
    chunks: AtomicPtr<ChunkHeader>,
}

impl Pool {
    /// Gives back the `count` blocks linked from `first` to `last` (through their first words),
    /// and frees the pool if that brings its last block home after it was abandoned.
    ///
    /// # Safety
    /// `pool` is live (some of its blocks are out, so it is); the blocks are unused blocks of
    /// this pool, linked from `first` to `last` with `count` blocks in all, each given back once.
    pub(crate) unsafe fn give_back(
        pool: *const Pool,
        first: NonNull<u8>,
        last: NonNull<u8>,
        count: usize,
    ) {
        // Safety: the caller's contract: the pool is live while any of its blocks is out.
        let shared = unsafe { &*pool };
        // Relaxed: the CAS below decides; the value read is only a guess of the head.
        let mut head = shared.returned.load(Ordering::Relaxed);
        // The loom model's teeth: a load and a store where a CAS is needed, so that two
        // reclaimers pushing at once can lose one's blocks.
        #[cfg(lanemap_broken_give_back)]
        {
            // Safety: as below.
            unsafe { last.cast::<*mut u8>().as_ptr().write(head) };
            crate::sync::yield_now();
            shared.returned.store(first.as_ptr(), Ordering::Release);
        }
        #[cfg(not(lanemap_broken_give_back))]
        loop {
            // Safety: `last` is an unused block of at least a pointer's size and alignment.
            unsafe { last.cast::<*mut u8>().as_ptr().write(head) };
            // Release: the owner's Acquire swap that takes the chain sees the links and that
            // the blocks' contents were dropped.
            match shared.returned.compare_exchange_weak(
                head,
                first.as_ptr(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => head = actual,
            }
        }
        // AcqRel: Release so that whoever frees the pool after seeing this count sees the
        // blocks pushed above; Acquire so that if this brings the balance to zero, this thread
        // sees the abandoning owner's writes (its chunk list) before freeing.
        let before = shared.balance.fetch_add(count, Ordering::AcqRel);
        if before.wrapping_add(count) == 0 {
            // Safety: abandoned and every block home: nobody else can reach the pool.
            unsafe { free_pool(pool.cast_mut()) };
        }
    }
}

/// A shard's node memory, used under the shard's lock.
pub(crate) struct Slab {
    pool: NonNull<Pool>,
    /// The block layout: the node's, padded so that a free block can hold a link, and to a
    /// power of two up to 64 bytes so that no small node straddles a cache line.
    block: Layout,
    /// Free blocks, linked through their first word.
    free: *mut u8,
    /// The unused tail of the newest chunk: `cut..end`.
    cut: *mut u8,
    end: *mut u8,
    /// Blocks in the next chunk.
    next_chunk_blocks: usize,
    /// Blocks ever handed out (wrapping, as `balance`).
    handed_out: usize,
    /// Chunks allocated.
    chunks: usize,
}

// Safety: the slab is only used under its shard's lock; its raw pointers are to memory the
// shard owns, which may be used and freed from any thread.
unsafe impl Send for Slab {}

impl Slab {
    /// An empty slab for nodes of `node` layout.
    pub(crate) fn new(node: Layout) -> Self {
        let size = node.size().max(size_of::<*mut u8>());
        let size = if size <= CHUNK_ALIGN {
            size.next_power_of_two()
        } else {
            size
        };
        let align = node.align().max(align_of::<*mut u8>());
        let block = Layout::from_size_align(size, align)
            .expect("lanemap: node layout overflow")
            .pad_to_align();
        let pool = Box::new(Pool {
            returned: AtomicPtr::new(ptr::null_mut()),
            balance: AtomicUsize::new(OWNED),
            chunks: AtomicPtr::new(ptr::null_mut()),
        });
        Self {
            pool: NonNull::from(Box::leak(pool)),
            block,
            free: ptr::null_mut(),
            cut: ptr::null_mut(),
            end: ptr::null_mut(),
            // Huge nodes: a first chunk of one block rather than of 16.
            next_chunk_blocks: FIRST_CHUNK_BLOCKS
                .min(MAX_CHUNK_BYTES / block.size())
                .max(1),
            handed_out: 0,
            chunks: 0,
        }
    }

    /// How many chunks the slab holds.
    pub(crate) fn chunks(&self) -> usize {
        self.chunks
    }

    /// The pool that this slab's blocks go back to.
    #[inline]
    pub(crate) fn pool(&self) -> *const Pool {
        self.pool.as_ptr()
    }

    /// An unused block for a node, valid until given back through [`Pool::give_back`] (or until
    /// the slab drops).
    #[inline]
    pub(crate) fn allocate(&mut self) -> NonNull<u8> {
        self.handed_out = self.handed_out.wrapping_add(1);
        if let Some(block) = NonNull::new(self.free) {
            // Safety: a free block of this slab, whose first word links to the next.
            self.free = unsafe { block.cast::<*mut u8>().as_ptr().read() };
            return block;
        }
        self.allocate_slow()
    }

    #[cold]
    fn allocate_slow(&mut self) -> NonNull<u8> {
        // Acquire: pairs with `give_back`'s Release push: the links and the dropped contents.
        let returned = self
            .pool_ref()
            .returned
            .swap(ptr::null_mut(), Ordering::Acquire);
        if let Some(block) = NonNull::new(returned) {
            // Safety: as in `allocate`: the chain reclamation gave back.
            self.free = unsafe { block.cast::<*mut u8>().as_ptr().read() };
            return block;
        }
        if self.cut == self.end {
            self.add_chunk();
        }
        // Safety: `cut < end`, both in the newest chunk, `end - cut` a multiple of the block.
        let block = unsafe { NonNull::new_unchecked(self.cut) };
        // Safety: as above; at most `end`.
        self.cut = unsafe { self.cut.add(self.block.size()) };
        block
    }

    /// Bytes at the start of each chunk that hold its header: the chunk's alignment, so that
    /// the blocks after it stay aligned.
    fn header_bytes(&self) -> usize {
        self.block.align().max(CHUNK_ALIGN)
    }

    fn add_chunk(&mut self) {
        let blocks = self.next_chunk_blocks;
        let header_bytes = self.header_bytes();
        let bytes = blocks
            .checked_mul(self.block.size())
            .and_then(|b| b.checked_add(header_bytes))
            .expect("lanemap: node chunk size overflow");
        let layout =
            Layout::from_size_align(bytes, header_bytes).expect("lanemap: node chunk layout");
        // Safety: `layout` has a non-zero size (the header).
        let chunk = unsafe { alloc(layout) };
        if chunk.is_null() {
            handle_alloc_error(layout);
        }
        let header = chunk.cast::<ChunkHeader>();
        // Safety: a fresh allocation, aligned for and larger than the header.
        unsafe {
            header.write(ChunkHeader {
                // Relaxed: only the owner writes the list while it owns the pool.
                previous: self.pool_ref().chunks.load(Ordering::Relaxed),
                layout,
            });
        }
        // Relaxed: read by the freer after the owner's Release on `balance` (see `abandon`).
        self.pool_ref().chunks.store(header, Ordering::Relaxed);
        self.chunks += 1;
        // Safety: within the chunk: the blocks follow the header.
        self.cut = unsafe { chunk.add(header_bytes) };
        // Safety: one past the end of the chunk.
        self.end = unsafe { chunk.add(bytes) };
        if bytes + bytes <= MAX_CHUNK_BYTES + header_bytes {
            self.next_chunk_blocks = blocks * 2;
        }
    }

    /// Replaces this slab by an empty one; the old chunks are freed once every block handed out
    /// from them is given back (at once, if all are home).
    pub(crate) fn abandon(&mut self) {
        let old = std::mem::replace(self, Slab::new(self.block));
        // Hand the old pool over without running `Drop` (which frees it outright).
        let old = std::mem::ManuallyDrop::new(old);
        // AcqRel: Release so that a reclaimer that frees the pool sees its chunk list; Acquire
        // so that if every block is home already, this thread sees their last returns.
        let before = old
            .pool_ref()
            .balance
            .fetch_sub(OWNED.wrapping_add(old.handed_out), Ordering::AcqRel);
        if before.wrapping_sub(OWNED.wrapping_add(old.handed_out)) == 0 {
            // Safety: abandoned with every block home: nobody else can reach the pool.
            unsafe { free_pool(old.pool.as_ptr()) };
        }
    }

    fn pool_ref(&self) -> &Pool {
        // Safety: the owner's pool lives until the slab drops or abandons it.
        unsafe { self.pool.as_ref() }
    }
}

impl Drop for Slab {
    /// Frees the chunks outright: only when the map drops, after reclamation has run every
    /// batch (so no block is out except in the map's own tables, whose nodes were dropped).
    fn drop(&mut self) {
        // Safety: the contract above; the pool is this slab's and nobody else holds it.
        unsafe { free_pool(self.pool.as_ptr()) };
    }
}

/// Frees a pool's chunks and the pool.
///
/// # Safety
/// No block of the pool is in use and no thread can reach the pool any more.
unsafe fn free_pool(pool: *mut Pool) {
    #[cfg(test)]
    tests::POOLS_FREED.with(|freed| freed.set(freed.get() + 1));
    // Safety: the caller's contract; the pool came from `Box::leak` in `Slab::new`.
    let pool = unsafe { Box::from_raw(pool) };
    // Relaxed: the caller's synchronisation (the AcqRel on `balance`) ordered the list's writes.
    let mut chunk = pool.chunks.load(Ordering::Relaxed);
    while !chunk.is_null() {
        // Safety: a chunk of this pool, headed by its header.
        let ChunkHeader { previous, layout } = unsafe { chunk.read() };
        // Safety: allocated in `add_chunk` with `layout`.
        unsafe { dealloc(chunk.cast(), layout) };
        chunk = previous;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    std::thread_local! {
        /// Pools freed so far on this thread: a test statistic, not part of any model (loom
        /// runs a model's threads on the test's own thread), and per thread so that tests
        /// running at once do not see each other's.
        pub(super) static POOLS_FREED: crate::sync::Cell<usize> = const { crate::sync::Cell::new(0) };
    }

    fn freed() -> usize {
        POOLS_FREED.with(crate::sync::Cell::get)
    }

    /// Links `blocks` into a chain and gives it back.
    unsafe fn give_back_all(pool: *const Pool, blocks: &[NonNull<u8>]) {
        for pair in blocks.windows(2) {
            // Safety: unused blocks of the pool, at least a pointer large.
            unsafe { pair[0].cast::<*mut u8>().as_ptr().write(pair[1].as_ptr()) };
        }
        let (first, last) = (blocks[0], blocks[blocks.len() - 1]);
        // Safety: the caller's contract, and linked just above.
        unsafe { Pool::give_back(pool, first, last, blocks.len()) };
    }

    #[cfg(not(loom))]
    #[test]
    fn blocks_are_distinct_aligned_and_reused_once_given_back() {
        let mut slab = Slab::new(Layout::new::<[u64; 3]>());
        assert_eq!(slab.block.size(), 32, "24-byte nodes padded to 32");
        let n = if cfg!(miri) { 40 } else { 1000 };
        let blocks: Vec<_> = (0..n).map(|_| slab.allocate()).collect();
        let distinct: HashSet<_> = blocks.iter().map(|b| b.as_ptr()).collect();
        assert_eq!(distinct.len(), n);
        assert!(blocks.iter().all(|b| b.as_ptr().addr() % 32 == 0));
        // Safety: unused blocks of this slab's pool, each given back once.
        unsafe { give_back_all(slab.pool(), &blocks[..n / 2]) };
        // Safety: the other half, likewise.
        unsafe { give_back_all(slab.pool(), &blocks[n / 2..]) };
        let again: HashSet<_> = (0..n).map(|_| slab.allocate().as_ptr()).collect();
        assert_eq!(again, distinct, "every block comes back, none twice");
    }

    #[cfg(not(loom))]
    #[test]
    fn over_aligned_and_huge_nodes_get_blocks_of_their_layout() {
        #[repr(align(128))]
        struct Padded(#[allow(dead_code)] u64);
        for node in [Layout::new::<Padded>(), Layout::new::<[u8; 3 << 20]>()] {
            let mut slab = Slab::new(node);
            for _ in 0..3 {
                let block = slab.allocate();
                assert_eq!(block.as_ptr().addr() % node.align(), 0);
                assert!(slab.block.size() >= node.size());
            }
        }
    }

    #[cfg(not(loom))]
    #[test]
    fn an_abandoned_pool_is_freed_by_whoever_brings_its_last_block_home() {
        let mut slab = Slab::new(Layout::new::<u64>());
        let before = freed();
        let out: Vec<_> = (0..20).map(|_| slab.allocate()).collect();
        let old = slab.pool();
        slab.abandon();
        assert_eq!(freed(), before, "blocks are out: the pool must stay");
        // Safety: the old pool's blocks, each given back once.
        unsafe { give_back_all(old, &out[..5]) };
        assert_eq!(freed(), before);
        // Safety: the rest of them, likewise.
        unsafe { give_back_all(old, &out[5..]) };
        assert_eq!(freed(), before + 1, "the last block home frees the pool");
        // With every block home, abandoning frees at once.
        let b = slab.allocate();
        // Safety: as above.
        unsafe { give_back_all(slab.pool(), &[b]) };
        slab.abandon();
        assert_eq!(freed(), before + 2);
        drop(slab);
        assert_eq!(freed(), before + 3);
    }

    /// A `Send` wrapper for a block handed to a model thread.
    #[cfg(loom)]
    #[derive(Clone, Copy)]
    struct Sent(*mut u8);
    // Safety: the model hands each block to one thread at a time.
    #[cfg(loom)]
    unsafe impl Send for Sent {}

    /// Two reclaimers give blocks back while the owner allocates and drains: no block is lost
    /// or handed out twice. (Fails under `--cfg lanemap_broken_give_back`.)
    #[cfg(loom)]
    #[test]
    fn concurrent_give_backs_lose_no_block() {
        loom::model(|| {
            let mut slab = Slab::new(Layout::new::<u64>());
            let a = slab.allocate();
            let b = slab.allocate();
            let pool = Sent(slab.pool().cast_mut().cast());
            let returns: Vec<_> = [a, b]
                .into_iter()
                .map(|block| {
                    let (block, pool) = (Sent(block.as_ptr()), pool);
                    loom::thread::spawn(move || {
                        let block = NonNull::new(block.0).unwrap();
                        // Safety: each thread gives back its own block, once.
                        unsafe { give_back_all(pool.0.cast(), &[block]) };
                    })
                })
                .collect();
            let c = slab.allocate();
            for thread in returns {
                thread.join().unwrap();
            }
            // Whatever `c` was (a returned block or a fresh one), the next two allocations
            // must yield a and b, minus `c`, and then fresh blocks: none of a, b twice.
            let d = slab.allocate();
            let e = slab.allocate();
            let got = [c, d, e].map(|x| x.as_ptr());
            let mut seen = HashSet::new();
            assert!(
                got.iter().all(|p| seen.insert(*p)),
                "a block handed out twice"
            );
            assert!(
                got.contains(&a.as_ptr()) && got.contains(&b.as_ptr()),
                "a returned block was lost"
            );
        });
    }

    /// The owner abandons its slab while a reclaimer returns the last block: exactly one of
    /// them frees the pool.
    #[cfg(loom)]
    #[test]
    fn abandon_racing_the_last_return_frees_the_pool_once() {
        loom::model(|| {
            let mut slab = Slab::new(Layout::new::<u64>());
            let a = Sent(slab.allocate().as_ptr());
            let pool = Sent(slab.pool().cast_mut().cast());
            let before = freed();
            let reclaimer = loom::thread::spawn(move || {
                // Safety: the pool's one outstanding block, given back once.
                unsafe { give_back_all(pool.0.cast(), &[NonNull::new(a.0).unwrap()]) };
            });
            slab.abandon();
            reclaimer.join().unwrap();
            assert_eq!(freed() - before, 1, "the old pool is freed exactly once");
        });
    }
}
