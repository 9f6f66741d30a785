//! Entries of the lock-free-read map: each in its own allocation, so a reader can keep using one
//! after a writer has replaced or removed it, until the reader's guard goes away.

/// One key-value pair with its full hash (so that moving it to a new table never calls `Hash`).
///
/// Immutable once published: a writer that changes a value publishes a new node and retires the
/// old one.
///
/// `repr(C)` with the hash last: a lookup of a small plain key reads only the key and the value
/// (see [`key_match`](crate::key_match)), which for `u64 -> u64` are the first 16 bytes. The
/// allocator hands out 24-byte nodes 16-byte aligned, so half of them cross a cache line at byte
/// 16 of 24: with the hash first, the value of every such node was on a second line.
#[repr(C)]
pub(crate) struct Node<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) hash: u64,
}

impl<K, V> Node<K, V> {
    /// Moves `node` to its own allocation (from the per-thread recycling cache when it can).
    #[inline]
    pub(crate) fn allocate(node: Self) -> *mut Self {
        let ptr = super::recycle::allocate(std::alloc::Layout::new::<Self>()).cast::<Self>();
        // Safety: a fresh block of `Self`'s layout, valid for a write.
        unsafe { ptr.as_ptr().write(node) };
        ptr.as_ptr()
    }

    /// Frees the allocation of a node whose contents were already dropped.
    ///
    /// # Safety
    /// `ptr` came from [`Node::allocate`], its contents are dropped, and it is not used again.
    #[inline]
    pub(crate) unsafe fn release(ptr: *mut Self) {
        debug_assert!(!ptr.is_null());
        // Safety: non-null, from `allocate` (the caller's contract).
        let block = unsafe { std::ptr::NonNull::new_unchecked(ptr) }.cast::<u8>();
        // Safety: from `recycle::allocate` with this layout, contents dropped.
        unsafe { super::recycle::release(block, std::alloc::Layout::new::<Self>()) };
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
