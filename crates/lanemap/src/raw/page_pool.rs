//! Pages of freed tables, kept for the next ones (Linux).
//!
//! A table mapped from the kernel starts on fresh pages, and each 4 KiB page costs a fault the
//! first time it is written: about 2.5 µs on this project's development machine, where growing
//! a map to 2^21 entries faulted in 46 000 pages, a fifth of the run's time. A growing map frees
//! as many pages as it takes: each migration retires the table it outgrew, half the size of the
//! next. So instead of unmapping them, a freed table's pages wait here (up to
//! [`POOL_MAX_BYTES`], process-wide), and the entries of a new table that a migration fills
//! are assembled from them with `mremap`, which moves pages between addresses without copying
//! or faulting. Only the entries are filled so: they may hold any bytes until written, while
//! control words must start zero, so they stay on fresh pages. A table sized up front gets
//! fresh pages throughout, which can be huge ones (see `table::HugePages`).
//!
//! Measured on the development machine, growing to 2^21 entries: 21 000 faults instead of
//! 46 000 (the pool starts full of the last map's pages), and half the kernel time. The moves
//! take the insert that starts a migration 0.05-0.36 ms for tables of 1.3-10.5 MiB, about
//! 0.1 µs a page, against the 2.5 µs each page would cost when first written.
//!
//! The glibc heap keeps freed memory in the same way for maps that allocate through it (64 MiB
//! is the most it keeps at the top of its heap before trimming); [`release`] gives the pool back
//! at once.

use crate::sync::Mutex;

/// The most bytes of freed tables the pool keeps, process-wide.
pub(crate) const POOL_MAX_BYTES: usize = 64 << 20;

/// Smaller ranges are unmapped rather than kept: each kept range is a kernel mapping, and a
/// process may have only so many (65 530 by default on Linux).
const MIN_PIECE_BYTES: usize = 64 << 10;

/// A page-aligned range of pages inside one kernel mapping (VMA), the unit `mremap` moves.
#[derive(Clone, Copy)]
struct Piece {
    /// An address, as an integer: the pool owns the pages, and holds no pointer into them.
    address: usize,
    len: usize,
}

struct Pool {
    /// Sorted by length, so that the largest come first (fewer, larger moves).
    pieces: Vec<Piece>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    pieces: Vec::new(),
    bytes: 0,
});

/// Bytes the pool holds now.
pub(crate) fn pooled_bytes() -> usize {
    POOL.lock().bytes
}

/// Moves pooled pages into `base[from..to)` (page-aligned offsets of a fresh private anonymous
/// mapping that the caller owns), from its start, as far as the pool goes. Returns the offsets
/// where moved ranges begin and end, which [`give_back`] needs: each moved range is a kernel
/// mapping of its own.
///
/// # Safety
/// `base[from..to)` is part of one fresh mapping owned by the caller, whose contents nothing
/// reads before writing (the moved pages hold old bytes).
pub(crate) unsafe fn fill(base: *mut u8, from: usize, to: usize) -> Vec<usize> {
    debug_assert!(from <= to);
    let mut taken = Vec::new();
    let mut unmap = Vec::new();
    {
        let mut pool = POOL.lock();
        let mut wanted = to - from;
        while wanted > 0 {
            let Some(piece) = pool.pieces.pop() else {
                break;
            };
            pool.bytes -= piece.len;
            let len = piece.len.min(wanted);
            if len < piece.len {
                let rest = Piece {
                    address: piece.address + len,
                    len: piece.len - len,
                };
                keep_or_unmap(&mut pool, rest, &mut unmap);
            }
            taken.push(Piece {
                address: piece.address,
                len,
            });
            wanted -= len;
        }
    }
    unmap_all(unmap);
    let mut cuts = Vec::with_capacity(2 * taken.len());
    let mut offset = from;
    for piece in taken {
        // Safety: `offset + piece.len <= to` (no more was taken than wanted), inside the
        // caller's mapping.
        let destination = unsafe { base.add(offset) };
        // Safety: `piece` lies inside one mapping that the pool owned and now hands to us
        // (taken out above), and the destination is the caller's own fresh range (the
        // function's contract), which the move replaces.
        let moved = unsafe {
            libc::mremap(
                piece.address as *mut libc::c_void,
                piece.len,
                piece.len,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                destination.cast::<libc::c_void>(),
            )
        };
        if moved == libc::MAP_FAILED {
            // Out of kernel mappings, say: the destination keeps its fresh pages, and the
            // piece goes.
            unmap_all(vec![piece]);
            continue;
        }
        cuts.push(offset);
        cuts.push(offset + piece.len);
        offset += piece.len;
    }
    cuts
}

/// Takes back the pages of a table's mapping `base[..len)` (`len` page-aligned) that is no
/// longer used, split at `cuts` (from [`fill`]) into pieces that each lie in one kernel mapping.
/// What the pool has no room for is unmapped.
///
/// # Safety
/// The mapping is the caller's, made by `mmap` and filled by `fill`, and nothing uses it any
/// more.
pub(crate) unsafe fn give_back(base: *mut u8, len: usize, cuts: &[usize]) {
    let mut bounds: Vec<usize> = cuts.to_vec();
    bounds.push(0);
    bounds.push(len);
    bounds.sort_unstable();
    bounds.dedup();
    let mut unmap = Vec::new();
    {
        let mut pool = POOL.lock();
        for pair in bounds.windows(2) {
            let piece = Piece {
                address: base as usize + pair[0],
                len: pair[1] - pair[0],
            };
            keep_or_unmap(&mut pool, piece, &mut unmap);
        }
    }
    unmap_all(unmap);
}

/// Unmaps every pooled page.
pub(crate) fn release() {
    let pieces = {
        let mut pool = POOL.lock();
        pool.bytes = 0;
        std::mem::take(&mut pool.pieces)
    };
    unmap_all(pieces);
}

/// Puts `piece` in the pool if it is large enough and the pool has room, else queues it to be
/// unmapped (once the pool's lock is released).
fn keep_or_unmap(pool: &mut Pool, piece: Piece, unmap: &mut Vec<Piece>) {
    if piece.len < MIN_PIECE_BYTES || pool.bytes + piece.len > POOL_MAX_BYTES {
        unmap.push(piece);
        return;
    }
    let at = pool.pieces.partition_point(|kept| kept.len <= piece.len);
    pool.pieces.insert(at, piece);
    pool.bytes += piece.len;
}

/// Unmaps pieces that nothing uses and that are out of the pool.
fn unmap_all(pieces: Vec<Piece>) {
    for piece in pieces {
        // Safety: pages of a mapping that nothing uses any more, owned by no one else (they
        // are out of the pool, or were never put in).
        let unmapped = unsafe { libc::munmap(piece.address as *mut libc::c_void, piece.len) };
        debug_assert_eq!(unmapped, 0, "munmap of a freed table's pages failed");
    }
}
