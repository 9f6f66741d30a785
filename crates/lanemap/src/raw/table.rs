//! The memory layout of one shard's table, and the probing that readers and the writer share.
//!
//! ```text
//! Table
//! ├── groups: [Group; power of two]      one 64-byte cache line each:
//! │     ├── ctrl:  AtomicU64              7 control bytes + a pad byte (see group.rs)
//! │     └── slots: [AtomicPtr<Node>; 7]   null, a node, or a node tagged MOVED
//! └── next: AtomicPtr<Table>              the table this one is migrating into, set at most once
//! ```
//!
//! A lookup thus touches one cache line of the table per probed group, plus the node: control
//! bytes and pointers share the line.
//!
//! Slots are named by *position* `8 * group + offset` (`offset < 7`), so that finding a slot's
//! group is a shift rather than a division by 7; positions `8 * group + 7` name no slot.
//!
//! Slot states as a reader sees them (ctrl byte, slot pointer):
//!
//! | ctrl | slot | meaning |
//! |---|---|---|
//! | EMPTY | null | never used; ends a probe |
//! | DELETED | null | tombstone |
//! | tag | node | live entry |
//! | tag | node + MOVED | entry copied to `next`; look there |
//!
//! A writer changes a slot only while holding its shard's lock. It publishes in the order
//! "slot pointer, then control byte", each with `Release`, and readers load "control word, then
//! slot pointer", each with `Acquire`; a reader that sees a tag therefore sees a node that is
//! fully initialised (or a later one).

use super::group::{self, ALL_EMPTY, GROUP_SLOTS};
use super::node::{Node, is_moved, untagged};
use crate::error::TryReserveError;
use crate::key_match;
use crate::reclaim::Guard;
use crate::sync::{AtomicPtr, AtomicU64, Ordering};
use equivalent::Equivalent;
use std::ptr::{self, NonNull};

/// The smallest table: one group.
pub(crate) const MIN_CAPACITY: usize = GROUP_SLOTS;

/// Positions per group (one more than its slots; see the module docs).
const POSITIONS: usize = 8;

/// A group's control word and slots, on one cache line.
#[repr(C, align(64))]
struct Group<K, V> {
    ctrl: AtomicU64,
    slots: [AtomicPtr<Node<K, V>>; GROUP_SLOTS],
}

#[cfg(all(not(loom), target_pointer_width = "64"))]
const _: () = assert!(size_of::<Group<(), ()>>() == 64);

pub(crate) struct Table<K, V> {
    /// Invariant: a power of two long, at least 1.
    groups: Groups<K, V>,
    /// The table this one migrates into; null until a migration starts, then never changed.
    pub(crate) next: AtomicPtr<Table<K, V>>,
}

/// Where a reader's probe for a key ended.
pub(crate) enum Lookup<'g, K, V> {
    Found(&'g Node<K, V>),
    /// The key's node was moved to `next`: continue there.
    Moved,
    /// No entry for the key in this table (it may still be in `next`, if there is one).
    Absent,
}

/// Where the writer's probe for a key ended.
pub(crate) enum Slot<K, V> {
    Occupied { index: usize, node: *mut Node<K, V> },
    Vacant { index: usize },
}

impl<K, V> Table<K, V> {
    /// The capacity (in slots) a table needs to hold `entries` within its load limit.
    pub(crate) fn capacity_for(entries: usize) -> Result<usize, TryReserveError> {
        let slots = entries
            .checked_mul(4)
            .ok_or(TryReserveError::CapacityOverflow)?
            / 3
            + 1;
        let groups = slots.div_ceil(GROUP_SLOTS).checked_next_power_of_two();
        let groups = groups.ok_or(TryReserveError::CapacityOverflow)?;
        match groups.checked_mul(size_of::<Group<K, V>>()) {
            Some(bytes) if bytes <= isize::MAX as usize => Ok(groups * GROUP_SLOTS),
            _ => Err(TryReserveError::CapacityOverflow),
        }
    }

    /// An empty table of `capacity` slots (a value returned by `capacity_for`).
    pub(crate) fn try_new(capacity: usize) -> Result<Box<Self>, TryReserveError> {
        let groups = capacity / GROUP_SLOTS;
        debug_assert!(groups.is_power_of_two() && groups * GROUP_SLOTS == capacity);
        let groups = Groups::new(groups)?;
        Ok(Box::new(Self {
            groups,
            next: AtomicPtr::new(ptr::null_mut()),
        }))
    }

    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.groups.len() * GROUP_SLOTS
    }

    /// One past the last position (of a slot or a pad).
    #[inline]
    pub(crate) fn end(&self) -> usize {
        self.groups.len() * POSITIONS
    }

    /// Whether `position` names a slot.
    #[inline]
    pub(crate) fn is_slot(position: usize) -> bool {
        position % POSITIONS < GROUP_SLOTS
    }

    /// Every slot position, in order.
    pub(crate) fn positions(&self) -> impl Iterator<Item = usize> + use<K, V> {
        (0..self.end()).filter(|&position| Self::is_slot(position))
    }

    /// The group of slot `index` and the slot's offset in it.
    #[inline]
    fn locate(&self, index: usize) -> (&Group<K, V>, usize) {
        debug_assert!(Self::is_slot(index));
        (&self.groups[index / POSITIONS], index % POSITIONS)
    }

    /// The atomic of slot `index`.
    #[inline]
    fn slot_atomic(&self, index: usize) -> &AtomicPtr<Node<K, V>> {
        let (group, offset) = self.locate(index);
        &group.slots[offset]
    }

    /// The most slots (live or tombstone) the table may use: 3/4 of them. (With 7 slots a group,
    /// 7/8 would leave 39% of groups full and probes long; at 3/4, 13% are.)
    #[inline]
    pub(crate) fn max_used(&self) -> usize {
        self.capacity() * 3 / 4
    }

    /// Probes for `key`, as a reader: no lock, no writes.
    #[inline]
    pub(crate) fn lookup<'g, Q>(
        &self,
        hash: u64,
        key: &Q,
        guard: &'g impl Guard,
    ) -> Lookup<'g, K, V>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let tag = group::tag(hash);
        // The probe sequence of `probe`, written out: this is the hottest loop of the crate.
        let mask = self.groups.len() - 1;
        let mut group_index = hash as usize & mask;
        let mut stride = 0;
        loop {
            // Safety: `group_index <= mask < groups.len()`.
            let line = unsafe { self.groups.get_unchecked(group_index) };
            // Acquire: pairs with the writer's Release store of this word, so the slot pointers
            // written before it are visible below.
            let group = line.ctrl.load(Ordering::Acquire);
            for offset in group::match_tag(group, tag) {
                // Safety: matches are only reported for the `GROUP_SLOTS` slot bytes.
                let slot = unsafe { line.slots.get_unchecked(offset) };
                // Acquire: pairs with the Release store that published the node (or its MOVED
                // mark), so its contents, and for a moved node its copy in `next`, are visible.
                let ptr = guard.protect(slot, Ordering::Acquire);
                if ptr.is_null() {
                    continue;
                }
                // Safety: a non-null slot points to a node that was live when loaded; the node
                // is retired only after being unlinked, and `guard` keeps it allocated until the
                // guard is dropped, which outlives `'g`.
                let node = unsafe { &*untagged(ptr) };
                if key_match::matches(&node.hash, &node.key, hash, key) {
                    return if is_moved(ptr) {
                        Lookup::Moved
                    } else {
                        Lookup::Found(node)
                    };
                }
            }
            if group::match_empty(group).any() || stride == mask {
                return Lookup::Absent;
            }
            stride += 1;
            group_index = (group_index + stride) & mask;
        }
    }

    /// Whether any slot, moved or not, holds `key`: the iterator's "was this key already this
    /// table's to report" test.
    pub(crate) fn holds<Q>(&self, hash: u64, key: &Q, guard: &impl Guard) -> bool
    where
        Q: Equivalent<K> + ?Sized,
    {
        !matches!(self.lookup(hash, key, guard), Lookup::Absent)
    }

    /// Probes for `key`, as the writer (the shard lock held): the occupied slot, or the first free
    /// one on the key's probe path.
    ///
    /// Returns `None` if the key is absent and no slot is free (the caller grows first).
    pub(crate) fn find_for_write<Q>(&self, hash: u64, key: &Q) -> Option<Slot<K, V>>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let tag = group::tag(hash);
        let mut free = None;
        // The probe sequence of `probe`, written out as in `lookup`: every write runs it.
        let mask = self.groups.len() - 1;
        let mut group_index = hash as usize & mask;
        let mut stride = 0;
        loop {
            // Safety: `group_index <= mask < groups.len()`.
            let line = unsafe { self.groups.get_unchecked(group_index) };
            // Relaxed: only the writer, who holds the shard lock, changes control words; the
            // lock orders this load after every earlier write.
            let group = line.ctrl.load(Ordering::Relaxed);
            for offset in group::match_tag(group, tag) {
                // Safety: matches are only reported for the `GROUP_SLOTS` slot bytes.
                let slot = unsafe { line.slots.get_unchecked(offset) };
                // Relaxed: as above, the lock orders it.
                let ptr = slot.load(Ordering::Relaxed);
                if ptr.is_null() || is_moved(ptr) {
                    continue;
                }
                // Safety: the writer holds the shard lock, so this live node cannot be retired
                // meanwhile.
                let node = unsafe { &*ptr };
                if key_match::matches(&node.hash, &node.key, hash, key) {
                    let index = group_index * POSITIONS + offset;
                    return Some(Slot::Occupied { index, node: ptr });
                }
            }
            if free.is_none() {
                free = group::match_free(group)
                    .next()
                    .map(|offset| group_index * POSITIONS + offset);
            }
            if group::match_empty(group).any() || stride == mask {
                break;
            }
            stride += 1;
            group_index = (group_index + stride) & mask;
        }
        free.map(|index| Slot::Vacant { index })
    }

    /// A free slot for a key known to be absent (used when moving nodes into a new table).
    pub(crate) fn find_free(&self, hash: u64) -> Option<usize> {
        for group_index in self.probe(hash) {
            // Relaxed: the writer holds the lock (see `find_for_write`).
            let group = self.groups[group_index].ctrl.load(Ordering::Relaxed);
            if let Some(offset) = group::match_free(group).next() {
                return Some(group_index * POSITIONS + offset);
            }
        }
        None
    }

    /// The control byte of slot `index` (writer only).
    #[inline]
    pub(crate) fn ctrl_byte(&self, index: usize) -> u8 {
        // Relaxed: the writer holds the lock (see `find_for_write`).
        let (group, offset) = self.locate(index);
        group::byte(group.ctrl.load(Ordering::Relaxed), offset)
    }

    /// The slot's current pointer (writer only).
    #[inline]
    pub(crate) fn slot(&self, index: usize) -> *mut Node<K, V> {
        // Relaxed: the writer holds the lock (see `find_for_write`).
        self.slot_atomic(index).load(Ordering::Relaxed)
    }

    /// Publishes `ptr` in slot `index` (writer only).
    #[inline]
    pub(crate) fn set_slot(&self, index: usize, ptr: *mut Node<K, V>) {
        store_slot(self.slot_atomic(index), ptr);
    }

    /// Publishes `ptr` under `tag` in the free slot `index` (writer only): the pointer first,
    /// then the control byte that makes readers look at it. Returns whether the slot was EMPTY
    /// (rather than a tombstone).
    #[inline]
    pub(crate) fn publish(&self, index: usize, ptr: *mut Node<K, V>, tag: u8) -> bool {
        let (group, offset) = self.locate(index);
        // Relaxed: the writer holds the lock (see `find_for_write`).
        let ctrl = group.ctrl.load(Ordering::Relaxed);
        store_slot(&group.slots[offset], ptr);
        // Release: a reader that sees the tag (Acquire) also sees the pointer stored before it.
        group
            .ctrl
            .store(group::with_byte(ctrl, offset, tag), Ordering::Release);
        group::byte(ctrl, offset) == group::EMPTY
    }

    /// Empties slot `index` (writer only); returns whether it became EMPTY rather than a
    /// tombstone.
    #[inline]
    pub(crate) fn unpublish(&self, index: usize) -> bool {
        let (group, offset) = self.locate(index);
        // Relaxed: the writer holds the lock (see `find_for_write`).
        let ctrl = group.ctrl.load(Ordering::Relaxed);
        // A probe stops at the first group holding an EMPTY byte, so no key's probe path runs
        // through such a group to a later one: the slot can become EMPTY again (and not cost a
        // tombstone) without hiding any key, from writers or from readers, who stop here
        // whichever of the two words they load.
        let empty = group::match_empty(ctrl).any();
        let byte = if empty { group::EMPTY } else { group::DELETED };
        // Release: pairs with readers' Acquire loads, like every control word store.
        group
            .ctrl
            .store(group::with_byte(ctrl, offset, byte), Ordering::Release);
        store_slot(&group.slots[offset], ptr::null_mut());
        empty
    }

    /// `set_slot` with the wrong ordering, for the loom models' broken variant only.
    #[cfg(lanemap_broken_publish)]
    pub(crate) fn set_slot_relaxed(&self, index: usize, ptr: *mut Node<K, V>) {
        self.slot_atomic(index).store(ptr, Ordering::Relaxed);
    }

    /// Starts loading the first group of `hash`'s probe path into the cache (writer only).
    #[inline]
    pub(crate) fn prefetch_group(&self, hash: u64) {
        let mask = self.groups.len() - 1;
        prefetch(&raw const self.groups[hash as usize & mask]);
    }

    /// The slot for readers that walk the whole table (iteration).
    #[inline]
    pub(crate) fn slot_for_reader(&self, index: usize) -> &AtomicPtr<Node<K, V>> {
        self.slot_atomic(index)
    }

    /// Group indices on `hash`'s probe path: triangular steps, which visit every group of a
    /// power-of-two table exactly once.
    #[inline]
    fn probe(&self, hash: u64) -> impl Iterator<Item = usize> {
        let mask = self.groups.len() - 1;
        let mut position = hash as usize & mask;
        let mut stride = 0;
        (0..self.groups.len()).map(move |_| {
            let current = position;
            stride += 1;
            position = (position + stride) & mask;
            current
        })
    }
}

/// Hints the CPU to start loading `ptr`'s cache line: no effect on memory or on what the
/// program computes, only on when the line arrives.
#[inline]
pub(crate) fn prefetch<T>(ptr: *const T) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // Safety: a prefetch only hints the cache hierarchy: it reads nothing the program sees and
    // never faults, whatever the address; `_mm_prefetch` needs SSE, which every x86_64 has.
    unsafe {
        std::arch::x86_64::_mm_prefetch(ptr.cast(), std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = ptr;
}

/// Stores a slot pointer for readers.
#[inline]
fn store_slot<K, V>(slot: &AtomicPtr<Node<K, V>>, ptr: *mut Node<K, V>) {
    // Release: a reader that loads `ptr` (Acquire) sees the node's contents, and for a MOVED
    // mark, the node's copy in `next` written before it.
    #[cfg(not(lanemap_broken_publish_node))]
    slot.store(ptr, Ordering::Release);
    // ThreadSanitizer's teeth (`scripts/verify`): a Relaxed publication, so a reader that
    // loads `ptr` may read the node before its contents are written.
    #[cfg(lanemap_broken_publish_node)]
    slot.store(ptr, Ordering::Relaxed);
}

/// A table's groups, all empty when made: zeroed memory (EMPTY control bytes are zero, and so
/// are null pointers). A large table is mapped straight from the kernel, whose fresh pages are
/// zero and cost nothing until touched; so the migration that fills the table pays for its
/// pages a few at a time. (From the global allocator, a multi-megabyte `alloc_zeroed` or fill
/// took one insert 2-3 ms on the development machine: the allocator zeroes reused memory.)
struct Groups<K, V> {
    ptr: NonNull<Group<K, V>>,
    len: usize,
    /// Whether `ptr` came from `mmap` (else from the global allocator, as a `Box<[Group]>`).
    mapped: bool,
}

// Safety: `Groups` owns its groups as a `Box<[Group]>` would; groups are atomics, which are
// `Send` and `Sync` whatever `K` and `V` are (as for the `Box` this replaces).
unsafe impl<K, V> Send for Groups<K, V> {}
// Safety: as above.
unsafe impl<K, V> Sync for Groups<K, V> {}

/// Tables from this size up are mapped from the kernel (where the platform allows it).
#[cfg(all(unix, not(miri), not(loom)))]
const MAP_FROM_BYTES: usize = 1 << 20;

/// Bytes of tables currently mapped, process-wide (see [`crate::mapped_table_bytes`]).
#[cfg(all(unix, not(miri), not(loom)))]
static MAPPED_BYTES: crate::sync::AtomicUsize = crate::sync::AtomicUsize::new(0);

/// Bytes of tables currently mapped straight from the kernel, process-wide.
pub(crate) fn mapped_bytes() -> usize {
    // Relaxed: a statistic.
    #[cfg(all(unix, not(miri), not(loom)))]
    return MAPPED_BYTES.load(Ordering::Relaxed);
    #[cfg(not(all(unix, not(miri), not(loom))))]
    0
}

impl<K, V> Groups<K, V> {
    /// `len` empty groups (`len >= 1`), or an error if memory runs out.
    fn new(len: usize) -> Result<Self, TryReserveError> {
        let layout = std::alloc::Layout::array::<Group<K, V>>(len)
            .map_err(|_| TryReserveError::CapacityOverflow)?;
        #[cfg(all(unix, not(miri), not(loom)))]
        if layout.size() >= MAP_FROM_BYTES {
            return Self::map(len, layout);
        }
        let groups = empty_groups::<K, V>(len, layout)?;
        Ok(Self {
            // Safety: a `Box`'s pointer is non-null.
            ptr: unsafe { NonNull::new_unchecked(Box::into_raw(groups).cast::<Group<K, V>>()) },
            len,
            mapped: false,
        })
    }

    #[cfg(all(unix, not(miri), not(loom)))]
    fn map(len: usize, layout: std::alloc::Layout) -> Result<Self, TryReserveError> {
        // Safety: an anonymous private mapping of `layout.size()` bytes, at an address of the
        // kernel's choosing; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(TryReserveError::AllocError { layout });
        }
        // Safety: `mmap` succeeded, so `ptr` is a non-null, page-aligned (so 64-aligned) mapping
        // of zeroed pages, which are valid empty groups.
        let ptr = unsafe { NonNull::new_unchecked(ptr.cast::<Group<K, V>>()) };
        // Relaxed: a statistic.
        MAPPED_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        Ok(Self {
            ptr,
            len,
            mapped: true,
        })
    }
}

impl<K, V> std::ops::Deref for Groups<K, V> {
    type Target = [Group<K, V>];

    #[inline]
    fn deref(&self) -> &[Group<K, V>] {
        // Safety: `len` initialised groups at `ptr`, owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<K, V> Drop for Groups<K, V> {
    fn drop(&mut self) {
        let slice = ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
        if !self.mapped {
            // Safety: from `Box::into_raw` in `new`, not freed before.
            drop(unsafe { Box::from_raw(slice) });
            return;
        }
        #[cfg(all(unix, not(miri), not(loom)))]
        {
            // Safety: the mapping made in `map`, of exactly this size, unmapped once. Groups
            // need no drop (plain atomics).
            let unmapped = unsafe {
                libc::munmap(
                    self.ptr.as_ptr().cast(),
                    self.len * size_of::<Group<K, V>>(),
                )
            };
            debug_assert_eq!(unmapped, 0, "munmap of a table failed");
            // Relaxed: a statistic.
            MAPPED_BYTES.fetch_sub(self.len * size_of::<Group<K, V>>(), Ordering::Relaxed);
        }
    }
}

/// `len` empty groups from the global allocator: zeroed memory.
#[cfg(not(loom))]
fn empty_groups<K, V>(
    len: usize,
    layout: std::alloc::Layout,
) -> Result<Box<[Group<K, V>]>, TryReserveError> {
    const { assert!(ALL_EMPTY == 0) };
    debug_assert!(layout.size() > 0, "a table has at least one 64-byte group");
    // Safety: a non-zero size (the caller asks for at least one group).
    let groups = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Group<K, V>>();
    if groups.is_null() {
        return Err(TryReserveError::AllocError { layout });
    }
    // Safety: all-zero bytes are a valid `Group` (a zero `AtomicU64`, null `AtomicPtr`s), the
    // memory has the layout of `[Group; len]` and comes from the global allocator, as `Box`
    // requires.
    Ok(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(groups, len)) })
}

/// `len` empty groups, built one by one: loom's atomics are not plain memory.
#[cfg(loom)]
fn empty_groups<K, V>(
    len: usize,
    _: std::alloc::Layout,
) -> Result<Box<[Group<K, V>]>, TryReserveError> {
    try_filled(len, || Group {
        ctrl: AtomicU64::new(ALL_EMPTY),
        slots: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
    })
}

/// A boxed slice of `len` values, or an error instead of an abort if memory runs out.
#[cfg(loom)]
fn try_filled<T>(len: usize, make: impl Fn() -> T) -> Result<Box<[T]>, TryReserveError> {
    let mut items = Vec::new();
    items
        .try_reserve_exact(len)
        .map_err(|_| match std::alloc::Layout::array::<T>(len) {
            Ok(layout) => TryReserveError::AllocError { layout },
            Err(_) => TryReserveError::CapacityOverflow,
        })?;
    items.extend((0..len).map(|_| make()));
    Ok(items.into_boxed_slice())
}
