//! Entries of the lock-free-read map: each in its own block of its shard's slab, so a reader can
//! keep using one after a writer has replaced or removed it, until the reader's guard goes away.

use super::slab::Slab;

/// One key-value pair with its full hash (so that moving it to a new table never calls `Hash`).
///
/// Immutable once published: a writer that changes a value publishes a new node and retires the
/// old one.
///
/// `repr(C)` with the hash last: a lookup of a small plain key reads only the key and the value
/// (see [`key_match`](crate::key_match)), which for `u64 -> u64` are the first 16 bytes. The
/// slab pads 24-byte nodes to 32-byte blocks, so a node's first 16 bytes never cross a cache
/// line (the allocator's 16-byte-aligned nodes, with the hash first, often did).
#[repr(C)]
pub(crate) struct Node<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) hash: u64,
}

impl<K, V> Node<K, V> {
    /// Moves `node` into a block of `slab`.
    #[inline]
    pub(crate) fn allocate(node: Self, slab: &mut Slab) -> *mut Self {
        let ptr = slab.allocate().cast::<Self>();
        // Safety: an unused block of at least `Self`'s size and alignment (the slab's blocks
        // are laid out for nodes), valid for a write.
        unsafe { ptr.as_ptr().write(node) };
        ptr.as_ptr()
    }
}

/// Low pointer bit set in a slot of an outgrown table: "this node now lives in the next table".
const MOVED: usize = 1;

// Nodes hold a `u64` (their hash), so their addresses are 8-aligned and the MOVED bit is clear.
const _: () = assert!(align_of::<Node<(), ()>>() > MOVED);

#[inline]
pub(crate) fn is_moved<T>(ptr: *mut T) -> bool {
    ptr.addr() & MOVED != 0
}

#[inline]
pub(crate) fn moved<T>(ptr: *mut T) -> *mut T {
    ptr.map_addr(|addr| addr | MOVED)
}

#[inline]
pub(crate) fn untagged<T>(ptr: *mut T) -> *mut T {
    ptr.map_addr(|addr| addr & !MOVED)
}
