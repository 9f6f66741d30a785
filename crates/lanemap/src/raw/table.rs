//! The memory layout of one shard's table, and the probing that readers and the writer share.
//!
//! ```text
//! Table
//! ├── ctrl:    [AtomicU64; groups]           one control word per group of 7 slots (group.rs)
//! ├── entries: [Node<K, V>; 7 * groups]      the slots' entries, inline (uninitialised if EMPTY)
//! ├── moved_on: [AtomicU64; groups / 8]     for the iterator: a bit per slot, set if the slot
//! │                                          holds a key that moved on from its origin
//! └── next:    AtomicPtr<Table>              the table this one migrates into, set at most once
//! ```
//!
//! A lookup reads its group's control word, then the entry its tag points to. The control words
//! take 8 bytes per 7 slots, so a large table's words stay in the CPU's cache when its entries
//! do not: a hit in a table much larger than the cache costs about one miss (the entry), as in
//! a single-threaded hashbrown table, where a table of pointers to entries costs two.
//!
//! Slots are named by *position* `8 * group + offset` (`offset < 7`), so that finding a slot's
//! group is a shift rather than a division by 7; positions `8 * group + 7` name no slot. A
//! slot's entry is `entries[7 * group + offset]`, that is `entries[position - group]`.
//!
//! # Why a reader may keep a reference into the table
//!
//! A slot's entry is written only while the slot is EMPTY or FREE, before the control byte that
//! makes it FULL (`Release`; readers load control words with `Acquire`). Nothing writes a FULL
//! slot's entry:
//!
//! - a removal only marks the slot DELETED;
//! - a change of value writes the new entry into another EMPTY or FREE slot and marks the old
//!   one DELETED (or FORWARDED, see below), in the same store when both slots share a group;
//! - a DELETED slot becomes FREE (writable again) only after a grace period: the shard's writer
//!   hands it to reclamation, which gives it back once every guard that was active when the
//!   slot was marked has ended (`RawMap`'s `RECYCLE_BATCH`);
//! - a migration copies the entry into the next table and sets the slot's MOVED bit.
//!
//! So a `&Node` a reader takes stays valid and unchanged while the reader's guard lives: the
//! slot cannot be written again before the guard ends, nor the table freed.
//!
//! # What iteration needs
//!
//! A walk over the table must report a key present throughout exactly once, even when its value
//! changes meanwhile and the new entry goes to another slot.
//!
//! - Within a group, the iterator reads the control word once and reports the FULL slots of that
//!   copy, in which the old slot and the new one (flipped by one store) are never both FULL.
//! - Across groups, the key is reported at its *origin*: the slot it was first written to in this
//!   table. When a change moves an origin's entry to a later group, the origin becomes
//!   FORWARDED instead of DELETED, and the new slot's `moved_on` bit is set (the writer keeps
//!   which origin it came from). The iterator skips FULL slots whose bit is set, and at a
//!   FORWARDED origin looks the key up (its bytes are still there) and reports the entry it
//!   finds. Further moves pass the bit on, and the removal of the key turns its origin DELETED,
//!   so a key inserted again later is a new origin. A bit is cleared only when its slot is
//!   recycled, so an iterator holding an old copy of a control word still reads it right.
//! - The writer reads a slot's bit (on removals and changes of value) only when its group's
//!   moved-on hint is set (`group::may_have_moved_on`): most groups hold no moved-on key, and
//!   the bitmap is a cache miss of its own, on top of the control word's and the entry's.
//!
//! The origin's key bytes are the moved-on entry's: a change of value keeps the key it has (as
//! `std`'s map does), and the removal that drops it first marks the origin DELETED.
//!
//! Who owns (and drops) a slot's key and value: the table, while the slot is FULL and not
//! MOVED; a MOVED slot's belong to its copy in the next table; a DELETED slot's to whoever
//! removed it (`RawMap` drops them after a grace period), except that a change of value hands the
//! key on to the new entry. The bytes of a DELETED, FORWARDED or MOVED slot stay readable for
//! the readers that still hold them: until it is recycled, or the table freed.
//!
//! Slot states as a reader sees them:
//!
//! | ctrl byte | MOVED bit | meaning |
//! |---|---|---|
//! | EMPTY | clear | unused, in a group that has never lacked one; ends a probe |
//! | DELETED | clear | tombstone |
//! | FORWARDED | clear | tombstone; the key lives on in a later slot (for iteration) |
//! | FREE | clear | tombstone that writers may fill again |
//! | tag | clear | live entry |
//! | tag | set | entry copied to `next`; look there |

use super::group::{self, ALL_EMPTY, GROUP_SLOTS};
use super::node::Node;
use crate::error::TryReserveError;
use crate::reclaim::Guard;
use crate::sync::{AtomicPtr, AtomicU64, Ordering, UnsafeCell};
use equivalent::Equivalent;
use std::marker::PhantomData;
use std::mem::{MaybeUninit, needs_drop};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::{self, NonNull};

/// The smallest table: one group.
pub(crate) const MIN_CAPACITY: usize = GROUP_SLOTS;

/// Positions per group (one more than its slots; see the module docs).
const POSITIONS: usize = 8;

/// The cache line size of the CPUs this is tuned for (x86-64 and most ARM cores).
const CACHE_LINE: usize = 64;

/// A slot's entry: written while the slot is EMPTY or FREE, read after its control byte says
/// FULL.
type Entry<K, V> = UnsafeCell<MaybeUninit<Node<K, V>>>;

pub(crate) struct Table<K, V> {
    /// Invariant: a power of two long, at least 1.
    ctrl: Zeroed<AtomicU64>,
    /// Invariant: `GROUP_SLOTS * ctrl.len() + 1` long: the last entry is no slot's, a spare so
    /// that the entry index of any position in `0..end()` is in bounds (see `cell`).
    entries: Zeroed<Entry<K, V>>,
    /// A bit per position (bit `p % 64` of word `p / 64`): set while slot `p` holds, or held
    /// until it was recycled, a key that moved on from its origin slot. Invariant: a power of
    /// two long (a word per 8 groups, at least one).
    moved_on: Zeroed<AtomicU64>,
    /// The table this one migrates into; null until a migration starts, then never changed.
    pub(crate) next: AtomicPtr<Table<K, V>>,
    /// For a large table, the one mapping that holds all three arrays (which then free
    /// nothing themselves): so that the control words get the huge pages the entries get.
    _block: Option<Zeroed<u8>>,
    /// The table owns the keys and values of its FULL, unmoved slots (drop check).
    _owns: PhantomData<Node<K, V>>,
}

/// When a new table asks for transparent huge pages.
///
/// Huge pages spare reads of a large table most of their TLB misses (in a harness on this
/// project's machine, random gets on 2^21 keys took 127-163 ns with them, 164-210 ns without).
/// But the first touch of each 2 MiB then faults in a whole huge page, and when none is free
/// the kernel compacts memory right there: single touches of 0.7-4.2 ms were measured, against
/// at most 0.6 ms with 4 KiB pages. A table made by `with_capacity` or `try_reserve` is sized
/// on request, ahead of the writes that fill it, and asks at once; a table that a migration
/// fills, write by write, asks only once the migration is over, so that no insert pays for a
/// compaction, and the kernel collapses its pages in the background.
#[derive(Clone, Copy)]
pub(crate) enum HugePages {
    Now,
    WhenFilled,
}

/// The entries of one group that a migration's step moves, with their hashes ([`Table::moves`]).
pub(crate) struct Moves {
    group_index: usize,
    movable: group::BitMask,
    /// By slot offset; only those in `movable` are set.
    hashes: [u64; GROUP_SLOTS],
}

impl Moves {
    /// No moves: a buffer for [`Table::moves`] to fill.
    pub(crate) const NONE: Self = Self {
        group_index: 0,
        movable: group::BitMask::NONE,
        hashes: [0; GROUP_SLOTS],
    };
}

/// Where a reader's probe for a key ended.
pub(crate) enum Lookup<'g, K, V> {
    Found(&'g Node<K, V>),
    /// The key's entry was moved to `next`: continue there.
    Moved,
    /// No entry for the key in this table (it may still be in `next`, if there is one).
    Absent,
}

/// What `publish_replacing` did.
pub(crate) struct Replaced {
    /// The new slot was EMPTY (the table's count of used slots grows).
    pub(crate) was_empty: bool,
    /// The old slot held a key that had moved on from its origin.
    pub(crate) old_moved_on: bool,
    /// The new slot holds a key that moved on from its origin.
    pub(crate) moved_on: bool,
    /// The old slot is the key's origin and FORWARDED now (else it is DELETED).
    pub(crate) forwarded: bool,
}

/// A slot as an iterator sees it.
pub(crate) enum SlotState {
    /// An entry, or (MOVED) one whose copy is in `next`.
    Full { moved: bool },
    /// An origin whose key moved on to a later slot (module docs).
    Forwarded,
    /// EMPTY, DELETED or FREE.
    Unused,
}

/// An EMPTY slot found for a migrating entry: its group, with the control word as loaded.
struct Vacancy<'t> {
    ctrl: &'t AtomicU64,
    word: u64,
    group_index: usize,
    offset: usize,
}

/// Whether a writer's probe may pick a FREE slot for a new entry: only if the table may have
/// some, which spares a match per group in tables that have none (say, while growing).
#[derive(Clone, Copy)]
pub(crate) enum Reuse {
    Free,
    EmptyOnly,
}

impl Reuse {
    /// The slots of `group` (whose EMPTY slots are `empty`) a new entry may take.
    #[inline]
    fn vacant_in(self, group: u64, empty: group::BitMask) -> group::BitMask {
        match self {
            Reuse::Free => group::match_reusable(group),
            Reuse::EmptyOnly => empty,
        }
    }
}

/// Where the writer's probe for a key ended (slot positions).
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    Occupied {
        index: usize,
    },
    /// The first FREE or EMPTY slot on the key's probe path (which ends at the first group with
    /// an EMPTY slot).
    Vacant {
        index: usize,
    },
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
        let group_bytes = size_of::<AtomicU64>() + GROUP_SLOTS * size_of::<Entry<K, V>>() + 1;
        match groups.checked_mul(group_bytes) {
            // Positions below 2^31, so that the writer can name them in 32 bits with a flag
            // (see `RawMap`'s `Writer::deleted`).
            Some(bytes) if bytes <= isize::MAX as usize && groups * POSITIONS < 1 << 31 => {
                Ok(groups * GROUP_SLOTS)
            }
            _ => Err(TryReserveError::CapacityOverflow),
        }
    }

    /// An empty table of `capacity` slots (a value returned by `capacity_for`), asking for
    /// huge pages now or not (see [`HugePages`]).
    pub(crate) fn try_new(capacity: usize, pages: HugePages) -> Result<Box<Self>, TryReserveError> {
        let groups = capacity / GROUP_SLOTS;
        debug_assert!(groups.is_power_of_two() && groups * GROUP_SLOTS == capacity);
        let moved_on_words = groups.div_ceil(8);
        debug_assert!(moved_on_words.is_power_of_two());
        #[cfg(all(unix, not(miri), not(loom)))]
        if let Some(table) = Self::try_new_mapped(groups, moved_on_words, pages)? {
            if matches!(pages, HugePages::Now) {
                table.advise_huge_pages();
            }
            return Ok(table);
        }
        let ctrl = Zeroed::new(groups, Contents::Zero, || AtomicU64::new(ALL_EMPTY))?;
        // Entries are read only once written: the allocator need not zero them (it would have
        // to for memory it reuses: 0.1-0.2 ms for a table of 28 672 slots).
        let entries = Zeroed::new(capacity + 1, Contents::Any, || {
            UnsafeCell::new(MaybeUninit::uninit())
        })?;
        let moved_on = Zeroed::new(moved_on_words, Contents::Zero, || AtomicU64::new(0))?;
        let table = Box::new(Self {
            ctrl,
            entries,
            moved_on,
            next: AtomicPtr::new(ptr::null_mut()),
            _block: None,
            _owns: PhantomData,
        });
        if matches!(pages, HugePages::Now) {
            table.advise_huge_pages();
        }
        Ok(table)
    }

    /// Asks the kernel to back the table's memory with transparent huge pages, if it is large
    /// enough and mapped (a hint: nothing changes for memory already faulted in until the
    /// kernel's background thread, khugepaged, collapses it).
    pub(crate) fn advise_huge_pages(&self) {
        match &self._block {
            Some(block) => block.advise_huge_pages(),
            None => {
                self.ctrl.advise_huge_pages();
                self.entries.advise_huge_pages();
            }
        }
    }

    /// A large table's arrays in one mapping: control words, then MOVED-on bits, then the
    /// entries (at a cache line). `None` if the table is too small to be mapped.
    #[cfg(all(unix, not(miri), not(loom)))]
    fn try_new_mapped(
        groups: usize,
        moved_on_words: usize,
        pages: HugePages,
    ) -> Result<Option<Box<Self>>, TryReserveError> {
        use std::alloc::Layout;
        let overflow = |_| TryReserveError::CapacityOverflow;
        let ctrl = Layout::array::<AtomicU64>(groups).map_err(overflow)?;
        let (layout, moved_on_at) = ctrl
            .extend(Layout::array::<AtomicU64>(moved_on_words).map_err(overflow)?)
            .map_err(overflow)?;
        let entries = Layout::array::<Entry<K, V>>(groups * GROUP_SLOTS + 1).map_err(overflow)?;
        let entries = entries.align_to(64).map_err(overflow)?;
        let (layout, entries_at) = layout.extend(entries).map_err(overflow)?;
        if layout.size() < MAP_FROM_BYTES || layout.align() > 4096 {
            return Ok(None);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = pages;
        let bytes = mapped_len(layout.size());
        let mapped = Layout::from_size_align(bytes, layout.align()).map_err(overflow)?;
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut block = Zeroed::<u8>::map(bytes, mapped)?;
        let base = block.ptr;
        // The entries may start with any bytes: give them the pages of freed tables, if the
        // pool has some, rather than fresh ones that fault when first written. Not for a table
        // that wants huge pages now: the pool's pages are small ones, which the kernel would
        // only collapse later, in the background.
        #[cfg(target_os = "linux")]
        if matches!(pages, HugePages::WhenFilled) {
            let from = entries_at.next_multiple_of(page_bytes());
            let to = layout.size().next_multiple_of(page_bytes());
            // Safety: `from..to` is the part of the fresh mapping that holds nothing but
            // entries, which are read only once written (see `write`).
            block.cuts = unsafe { super::page_pool::fill(base.as_ptr(), from, to) };
        }
        // Each of the three parts lies inside the mapping (`Layout::extend` placed them),
        // aligned for its type (the mapping is page-aligned, `extend` aligned the offsets).
        // Safety: in bounds and aligned (above); zero bytes are valid items (`heap_box`), and
        // the entries, which may hold old bytes, are valid with any; the table keeps `block`,
        // which frees the memory, as long as the parts.
        let ctrl = unsafe { Zeroed::part(base, 0, groups) };
        // Safety: as above.
        let moved_on = unsafe { Zeroed::part(base, moved_on_at, moved_on_words) };
        // Safety: as above.
        let entries = unsafe { Zeroed::part(base, entries_at, groups * GROUP_SLOTS + 1) };
        Ok(Some(Box::new(Self {
            ctrl,
            moved_on,
            entries,
            next: AtomicPtr::new(ptr::null_mut()),
            _block: Some(block),
            _owns: PhantomData,
        })))
    }

    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.ctrl.len() * GROUP_SLOTS
    }

    /// One past the last position (of a slot or a MOVED byte).
    #[inline]
    pub(crate) fn end(&self) -> usize {
        self.ctrl.len() * POSITIONS
    }

    /// Whether `position` names a slot.
    #[inline]
    pub(crate) fn is_slot(position: usize) -> bool {
        position % POSITIONS < GROUP_SLOTS
    }

    /// Whether `position` is its group's first.
    #[inline]
    pub(crate) fn starts_group(position: usize) -> bool {
        position % POSITIONS == 0
    }

    /// Every slot position, in order.
    pub(crate) fn positions(&self) -> impl Iterator<Item = usize> + use<K, V> {
        (0..self.end()).filter(|&position| Self::is_slot(position))
    }

    /// The control word of slot `index`'s group, and the slot's offset in it.
    #[inline]
    fn locate(&self, index: usize) -> (&AtomicU64, usize) {
        debug_assert!(Self::is_slot(index) && index < self.end());
        // Masked rather than bounds-checked: the same group for every position of the table.
        let group = (index / POSITIONS) & (self.ctrl.len() - 1);
        // Safety: `ctrl.len()` is a power of two (its invariant), so `group < ctrl.len()`.
        (unsafe { self.ctrl.get_unchecked(group) }, index % POSITIONS)
    }

    /// The entry cell of slot `index`.
    #[inline]
    fn cell(&self, index: usize) -> &Entry<K, V> {
        debug_assert!(Self::is_slot(index) && index < self.end());
        let group = (index / POSITIONS) & (self.ctrl.len() - 1);
        // At most `GROUP_SLOTS * (ctrl.len() - 1) + 7`, the spare entry's index.
        let entry = group * GROUP_SLOTS + index % POSITIONS;
        // Safety: `entries` is `GROUP_SLOTS * ctrl.len() + 1` long (its invariant).
        unsafe { self.entries.get_unchecked(entry) }
    }

    /// The entry of slot `index`, for as long as the caller can show the table lives.
    ///
    /// # Safety
    /// The slot's control byte was seen FULL, with `Acquire` (a reader) or under the shard lock
    /// (the writer), so the entry is initialised; it then stays so, unchanged, as long as a
    /// guard that was active when it was seen FULL lives, or the writer holds the lock (see the
    /// module docs), and the caller uses the reference no longer than that, nor longer than the
    /// table lives.
    #[inline]
    unsafe fn entry<'a>(&self, index: usize) -> &'a Node<K, V> {
        // Safety: the caller's contract (`MaybeUninit<T>` has `T`'s layout).
        self.cell(index)
            .with(|cell| unsafe { &*cell.cast::<Node<K, V>>() })
    }

    /// [`entry`](Self::entry) for slot `offset` of group `group_index`, without the bounds
    /// check (for the probe loops).
    ///
    /// # Safety
    /// As for `entry`, and `group_index < ctrl.len()`, `offset < GROUP_SLOTS`.
    #[inline]
    unsafe fn entry_in_group<'a>(&self, group_index: usize, offset: usize) -> &'a Node<K, V> {
        debug_assert!(group_index < self.ctrl.len() && offset < GROUP_SLOTS);
        // Safety: `entries` holds `GROUP_SLOTS` per group (its invariant), so the index is in
        // bounds by the caller's contract.
        let cell = unsafe {
            self.entries
                .get_unchecked(group_index * GROUP_SLOTS + offset)
        };
        // Safety: the caller's contract (`MaybeUninit<T>` has `T`'s layout).
        cell.with(|cell| unsafe { &*cell.cast::<Node<K, V>>() })
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
        _guard: &'g impl Guard,
    ) -> Lookup<'g, K, V>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let tag = group::tag(hash);
        // The entry a hit reads is most likely in the first group, whose entries then load
        // with its control word rather than after it.
        self.prefetch_entries(hash);
        // The probe sequence of `probe`, written out: this is the hottest loop of the crate.
        let mask = self.ctrl.len() - 1;
        let mut group_index = hash as usize & mask;
        let mut stride = 0;
        loop {
            // Safety: `group_index <= mask < ctrl.len()`.
            let ctrl = unsafe { self.ctrl.get_unchecked(group_index) };
            // Acquire: pairs with the writer's Release store of this word, so the entries
            // written before it, and for a MOVED bit the entry's copy in `next`, are visible.
            let group = ctrl.load(Ordering::Acquire);
            for offset in group::match_tag(group, tag) {
                // Safety: tag matches are FULL bytes (group.rs), loaded with Acquire above, of
                // one of the group's slots; the caller's guard keeps the table, and so the
                // entry, alive for 'g.
                let node = unsafe { self.entry_in_group(group_index, offset) };
                if key.equivalent(&node.key) {
                    return if group::is_moved(group, offset) {
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

    /// Probes for `key`, as the writer (the shard lock held): its unmoved slot, or the first
    /// FREE (if `reuse` says the table may have some) or EMPTY one on its probe path (which ends
    /// at the first group with an EMPTY slot).
    ///
    /// Returns `None` only if the key is absent and no group on its path has an EMPTY slot.
    ///
    /// Always inlined into `RawMap::lock`, which every write runs: as a call it cost about 12
    /// instructions per write in register saves (callgrind).
    #[inline(always)]
    pub(crate) fn find_for_write<Q>(&self, hash: u64, key: &Q, reuse: Reuse) -> Option<Slot>
    where
        Q: Equivalent<K> + ?Sized,
    {
        // One probe loop for each: with no FREE slot to consider, the vacancy is the first EMPTY
        // slot of the group that ends the probe, with nothing to track on the way.
        match reuse {
            Reuse::Free => self.probe_for_write::<true, Q>(hash, key),
            Reuse::EmptyOnly => self.probe_for_write::<false, Q>(hash, key),
        }
    }

    /// [`find_for_write`](Self::find_for_write), considering FREE slots if `FREE`.
    #[inline(always)]
    fn probe_for_write<const FREE: bool, Q>(&self, hash: u64, key: &Q) -> Option<Slot>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let tag = group::tag(hash);
        // The probe sequence of `probe`, written out as in `lookup`: every write runs it.
        let mask = self.ctrl.len() - 1;
        let mut group_index = hash as usize & mask;
        let mut stride = 0;
        let mut free = None;
        loop {
            // Safety: `group_index <= mask < ctrl.len()`.
            let ctrl = unsafe { self.ctrl.get_unchecked(group_index) };
            // Relaxed: only the writer, who holds the shard lock, changes control words; the
            // lock orders this load after every earlier write.
            let group = ctrl.load(Ordering::Relaxed);
            for offset in group::match_tag(group, tag) {
                if group::is_moved(group, offset) {
                    continue;
                }
                // Safety: a FULL byte of one of the group's slots, seen under the lock; the shard
                // owns the table.
                let node = unsafe { self.entry_in_group(group_index, offset) };
                if key.equivalent(&node.key) {
                    let index = group_index * POSITIONS + offset;
                    return Some(Slot::Occupied { index });
                }
            }
            if FREE && free.is_none() {
                free = group::match_reusable(group)
                    .next()
                    .map(|offset| group_index * POSITIONS + offset);
            }
            if let Some(offset) = group::match_empty(group).next() {
                let index = free.unwrap_or(group_index * POSITIONS + offset);
                return Some(Slot::Vacant { index });
            }
            if stride == mask {
                return free.map(|index| Slot::Vacant { index });
            }
            stride += 1;
            group_index = (group_index + stride) & mask;
        }
    }

    /// The first EMPTY slot on `hash`'s probe path in the control words `ctrl` (a table's, for an
    /// entry known to be absent from it, such as one a migration moves in), with its group's
    /// control word as loaded (writer only).
    ///
    /// Takes the words rather than the table: a migration hoists the slice out of its loop,
    /// which the compiler cannot do for a table's fields across the atomic stores of each move.
    #[inline]
    fn find_vacancy(ctrl: &[AtomicU64], hash: u64) -> Option<Vacancy<'_>> {
        // The probe sequence of `probe`, written out: every moved entry runs it.
        let mask = ctrl.len() - 1;
        let mut group_index = hash as usize & mask;
        let mut stride = 0;
        loop {
            // Safety: `group_index <= mask < ctrl.len()`.
            let word_ref = unsafe { ctrl.get_unchecked(group_index) };
            // Relaxed: the writer holds the lock (see `find_for_write`).
            let word = word_ref.load(Ordering::Relaxed);
            if let Some(offset) = group::match_empty(word).next() {
                return Some(Vacancy {
                    ctrl: word_ref,
                    word,
                    group_index,
                    offset,
                });
            }
            if stride == mask {
                return None;
            }
            stride += 1;
            group_index = (group_index + stride) & mask;
        }
    }

    /// Where a new entry for the key in slot `index` goes when its value changes: a FREE or
    /// EMPTY slot of the same group if there is one, else the first one after it on the key's
    /// probe path (writer only).
    ///
    /// No group before `index`'s on the path has an EMPTY slot (a probe would have stopped
    /// there, and a group without an EMPTY slot never gets one; see `recycle`), and the first
    /// FREE or EMPTY slot after it comes no later than the first group with an EMPTY slot; so
    /// the new slot is where every probe for the key that passes the old slot will look next.
    /// (A FREE slot *before* the old one would not do: a reader that had passed it while still
    /// FREE would miss the key once the old slot is marked.)
    #[inline]
    pub(crate) fn find_replacement(&self, hash: u64, index: usize, reuse: Reuse) -> Option<usize> {
        let home = index / POSITIONS;
        // Most often the key's own group has room: no need to walk the path to it.
        let (ctrl, _) = self.locate(index);
        // Relaxed: the writer holds the lock (see `find_for_write`).
        let group = ctrl.load(Ordering::Relaxed);
        if let Some(offset) = reuse.vacant_in(group, group::match_empty(group)).next() {
            return Some(home * POSITIONS + offset);
        }
        self.find_replacement_after(hash, home, reuse)
    }

    /// `find_replacement` past the key's own group, `home`, which has no room.
    #[cold]
    #[inline(never)]
    fn find_replacement_after(&self, hash: u64, home: usize, reuse: Reuse) -> Option<usize> {
        self.probe(hash)
            .skip_while(|&group_index| group_index != home)
            .find_map(|group_index| {
                // Relaxed: the writer holds the lock (see `find_for_write`).
                let group = self.ctrl[group_index].load(Ordering::Relaxed);
                let offset = reuse.vacant_in(group, group::match_empty(group)).next()?;
                Some(group_index * POSITIONS + offset)
            })
    }

    /// The control byte of slot `index` (writer only).
    #[inline]
    pub(crate) fn ctrl_byte(&self, index: usize) -> u8 {
        let (ctrl, offset) = self.locate(index);
        // Relaxed: the writer holds the lock (see `find_for_write`).
        group::byte(ctrl.load(Ordering::Relaxed), offset)
    }

    /// Whether slot `index` is FULL and not MOVED: its entry is this table's (writer only).
    #[inline]
    pub(crate) fn holds_entry(&self, index: usize) -> bool {
        let (ctrl, offset) = self.locate(index);
        // Relaxed: the writer holds the lock (see `find_for_write`).
        let group = ctrl.load(Ordering::Relaxed);
        group::is_full(group::byte(group, offset)) && !group::is_moved(group, offset)
    }

    /// The entry of the FULL slot `index`, valid while the shard lock is held (writer only);
    /// for a reader's guard, see [`node_for_guard`](Self::node_for_guard).
    ///
    /// # Safety
    /// The writer holds the shard lock, and the slot is FULL (or was FULL: a DELETED or MOVED
    /// slot keeps its bytes).
    #[inline]
    pub(crate) unsafe fn node(&self, index: usize) -> &Node<K, V> {
        // Safety: the caller's contract; the lock keeps the table alive while `&self` does.
        unsafe { self.entry(index) }
    }

    /// The entry of slot `index`, valid for `'g`.
    ///
    /// # Safety
    /// The slot was seen FULL (or FORWARDED: its bytes were written and are kept) while `guard`
    /// was active, so that the slot cannot be reused before `guard` ends; and the table stays
    /// allocated for `'g`: `guard` was active when the table was last reachable from the shard
    /// (it is retired only once unreachable, and then freed only after `guard` ends).
    #[inline]
    pub(crate) unsafe fn node_for_guard<'g>(
        &self,
        index: usize,
        _guard: &'g impl Guard,
    ) -> &'g Node<K, V> {
        // Safety: the caller's contract.
        unsafe { self.entry(index) }
    }

    /// Takes the key and value out of the FULL slot `index` (writer only), as the caller marks it
    /// DELETED or MOVED: the slot's bytes stay readable, but no longer own anything.
    ///
    /// # Safety
    /// The writer holds the shard lock, the slot is FULL and not MOVED, and the caller marks it
    /// DELETED or MOVED (so that the table never drops the entry too).
    #[inline]
    pub(crate) unsafe fn take(&self, index: usize) -> Node<K, V> {
        // Safety: the caller's contract; a bitwise copy whose ownership the caller takes over
        // (`MaybeUninit<T>` has `T`'s layout).
        self.cell(index)
            .with(|cell| unsafe { ptr::read(cell.cast::<Node<K, V>>()) })
    }

    /// Writes `node` into the EMPTY or FREE slot `index`'s entry (writer only), not yet
    /// published.
    #[inline]
    fn write(&self, index: usize, node: Node<K, V>) {
        debug_assert!(matches!(self.ctrl_byte(index), group::EMPTY | group::FREE));
        // Readers and the writer only read entries of slots they saw FULL, and a slot becomes
        // FREE only once every guard that could have seen it FULL is gone.
        // Safety: an EMPTY or FREE slot's entry is read by no one (above); the writer holds
        // the lock.
        self.cell(index)
            .with_mut(|cell| unsafe { (*cell).write(node) });
    }

    /// Publishes `node` under `tag` in the EMPTY or FREE slot `index` (writer only): the entry
    /// first, then the control byte that makes readers look at it. Returns whether the slot was
    /// EMPTY (the table's count of used slots grows).
    #[inline]
    pub(crate) fn publish(&self, index: usize, node: Node<K, V>, tag: u8) -> bool {
        let (ctrl, offset) = self.locate(index);
        // Relaxed: the writer holds the lock (see `find_for_write`). Loaded once: writing the
        // entry changes no control word.
        let group = ctrl.load(Ordering::Relaxed);
        self.write(index, node);
        store_ctrl(ctrl, group::with_byte(group, offset, tag));
        group::byte(group, offset) == group::EMPTY
    }

    /// The entries of the FULL, unmoved slots at positions `from..to` (within one group; none if
    /// `from` is `to` or the table's end), with their hashes, written into `moves`: what a
    /// migration's step moves (writer only). Also starts loading the groups of `target` they
    /// will move to: the old table is read in order, which the CPU's own prefetcher follows, but
    /// the targets are random in memory, so a migration takes the moves of the group after the
    /// one it moves.
    ///
    /// Entries do not store their hash, so this calls `hash_of` (user code) on each key. Taking
    /// them all before [`move_into`](Self::move_into) copies anything means a panic in `Hash`
    /// finds both tables as they were.
    ///
    /// It fills the caller's `Moves` in place rather than returning one: a migration keeps two
    /// and alternates, since copying one would load the hashes just stored, and on x86 a load
    /// that spans two earlier stores waits for every older store, the cache-missing copies of
    /// the step before included, to reach the cache (measured: a quarter of `migrate_slots`'
    /// samples).
    #[inline]
    pub(crate) fn moves(
        &self,
        moves: &mut Moves,
        from: usize,
        to: usize,
        hash_of: impl Fn(&K) -> u64,
        target: &Self,
    ) {
        let group_index = from / POSITIONS;
        moves.group_index = group_index;
        moves.movable = group::BitMask::NONE;
        let Some(ctrl) = self.ctrl.get(group_index).filter(|_| from < to) else {
            return;
        };
        debug_assert!(to <= Self::group_end(from));
        // Relaxed: the writer holds the lock (see `find_for_write`).
        let word = ctrl.load(Ordering::Relaxed);
        let last = (to - group_index * POSITIONS).min(GROUP_SLOTS);
        let movable = group::match_full_unmoved(word).within(from % POSITIONS, last);
        for offset in movable {
            // Safety: a FULL slot of group `group_index < ctrl.len()`, seen under the lock.
            let hash = hash_of(&unsafe { self.entry_in_group(group_index, offset) }.key);
            target.prefetch_group(hash);
            moves.hashes[offset] = hash;
        }
        // Set last: if `hash_of` panics, `moves` names no slot whose hash it lacks.
        moves.movable = movable;
    }

    /// [`moves`](Self::moves) of the one FULL, unmoved slot at `index`, whose key's hash the
    /// caller knows (writer only).
    #[inline]
    pub(crate) fn moves_of(&self, index: usize, hash: u64) -> Moves {
        debug_assert!(self.holds_entry(index));
        let (group_index, offset) = (index / POSITIONS, index % POSITIONS);
        let mut hashes = [0; GROUP_SLOTS];
        hashes[offset] = hash;
        Moves {
            group_index,
            movable: group::BitMask::single(offset),
            hashes,
        }
    }

    /// Moves the entries `moves` names (from [`moves`](Self::moves), with no write to the
    /// shard since) into `new`, this table's `next`, then marks them MOVED in one store (a
    /// migration's step; writer only). Returns how many moved; `Err` with that count if `new`
    /// ran out of room, in which case what did move is marked all the same, so that no entry is
    /// owned by both tables. Calls no user code.
    ///
    /// Each entry's bytes are copied as they are, without a typed move of the key and value,
    /// which would retag the pointers inside them (a `Box`, say) while readers still hold
    /// references through the old slot. Its copy is published (a `Release` store of its control
    /// word) before the MOVED bit, so a reader that sees the bit finds the copy in `next`.
    ///
    /// # Safety
    /// The writer holds the lock of the shard that owns both tables, and `new` is not `self`;
    /// `moves` came from this table's [`moves`](Self::moves) or [`moves_of`](Self::moves_of)
    /// under the same hold of the lock, and nothing has written to the group since (so the
    /// slots it names are still FULL and unmoved: their entries are initialised).
    #[inline]
    pub(crate) unsafe fn move_into(&self, moves: &Moves, new: &Self) -> Result<usize, usize> {
        let group_index = moves.group_index;
        let Some(ctrl) = self.ctrl.get(group_index) else {
            return Ok(0);
        };
        // Relaxed: the writer holds the lock (see `find_for_write`).
        let word = ctrl.load(Ordering::Relaxed);
        debug_assert!(
            moves.movable.is_within(group::match_full_unmoved(word)),
            "lanemap internal error: a move of slots that changed since `moves`"
        );
        let entries = &*self.entries;
        // Hoisted: see `find_vacancy`.
        let (new_ctrl, new_entries) = (&*new.ctrl, &*new.entries);
        let mut marked = word;
        let mut moved = 0;
        let mut room = true;
        for offset in moves.movable {
            let hash = moves.hashes[offset];
            // Safety: `offset < GROUP_SLOTS` and `group_index < ctrl.len()`, and `entries` holds
            // `GROUP_SLOTS` per group.
            let source = unsafe { entries.get_unchecked(group_index * GROUP_SLOTS + offset) };
            let Some(vacancy) = Self::find_vacancy(new_ctrl, hash) else {
                room = false;
                break;
            };
            let target = vacancy.group_index * GROUP_SLOTS + vacancy.offset;
            // Safety: `find_vacancy` returns a slot of `new`'s groups, `GROUP_SLOTS` entries each.
            let target = unsafe { new_entries.get_unchecked(target) };
            source.with(|source| {
                target.with_mut(|target| {
                    // Safety: distinct tables, so no overlap; the source is an initialised entry,
                    // and the target an EMPTY slot's entry, which no one reads (see `write`).
                    // Ownership passes to the copy, as the slot is marked MOVED below.
                    unsafe { ptr::copy_nonoverlapping(source, target, 1) }
                })
            });
            let published =
                group::with_tag_in_empty(vacancy.word, vacancy.offset, group::tag(hash));
            store_ctrl(vacancy.ctrl, published);
            marked = group::with_moved(marked, offset);
            moved += 1;
        }
        if marked != word {
            // Release: a reader that sees a MOVED bit (Acquire) also sees the entry's copy in
            // `next`, published before it.
            #[cfg(not(lanemap_broken_publish))]
            ctrl.store(marked, Ordering::Release);
            // The loom models' teeth: a Relaxed MOVED mark, so a reader that sees it may not see
            // the entry's copy in `next`.
            #[cfg(lanemap_broken_publish)]
            ctrl.store(marked, Ordering::Relaxed);
        }
        if room { Ok(moved) } else { Err(moved) }
    }

    /// Publishes `node`, the key's new entry, in the FREE or EMPTY slot `new` (from
    /// `find_replacement`), and retires the key's old slot `old` (writer only).
    ///
    /// In the same group, one store does both, so every reader sees the old entry or the new
    /// one. Otherwise the new entry is published first: until the old slot is marked, probes for
    /// the key stop at the old slot, which comes first on its path; once it is marked, they go
    /// on to the new one, already visible to them (the mark's `Release` orders it after). The old
    /// slot becomes FORWARDED if it is the key's origin, else DELETED, and the new slot is marked
    /// moved-on (module docs); in the same group, the new slot simply takes the old one's place.
    #[inline]
    pub(crate) fn publish_replacing(
        &self,
        new: usize,
        node: Node<K, V>,
        tag: u8,
        old: usize,
    ) -> Replaced {
        let (new_ctrl, new_offset) = self.locate(new);
        let (old_ctrl, old_offset) = self.locate(old);
        // Relaxed: the writer holds the lock (see `find_for_write`). Loaded once: writing the
        // entry and the moved-on bit changes no control word.
        let group = new_ctrl.load(Ordering::Relaxed);
        let was_empty = group::byte(group, new_offset) == group::EMPTY;
        let old_moved_on = self.is_moved_on(old);
        self.write(new, node);
        let mut published = group::with_byte(group, new_offset, tag);
        let across = !ptr::eq(new_ctrl, old_ctrl);
        if across || old_moved_on {
            self.set_moved_on(new);
            // The loom models' teeth: without the hint, the writer takes the slot for its
            // key's origin, and a removal leaves the origin FORWARDED.
            published = group::with_moved_on_hint(published, !cfg!(lanemap_broken_hint));
        }
        let forwarded = across && !old_moved_on;
        if !across {
            store_ctrl(
                new_ctrl,
                group::with_byte(published, old_offset, group::DELETED),
            );
        } else {
            let old_byte = if forwarded {
                group::FORWARDED
            } else {
                group::DELETED
            };
            // The loom models' teeth: the old slot marked first, so that for a moment probes for
            // the key find neither entry.
            #[cfg(lanemap_broken_forward)]
            self.mark(old, old_byte);
            store_ctrl(new_ctrl, published);
            #[cfg(not(lanemap_broken_forward))]
            self.mark(old, old_byte);
        }
        Replaced {
            was_empty,
            old_moved_on,
            moved_on: across || old_moved_on,
            forwarded,
        }
    }

    /// Marks the key's FULL slot `index` DELETED (writer only): the key leaves the table. Its
    /// bytes stay readable.
    #[inline]
    pub(crate) fn unpublish(&self, index: usize) {
        self.mark(index, group::DELETED);
    }

    /// Marks the FORWARDED origin `index` of a key that leaves the table DELETED (writer only).
    #[inline]
    pub(crate) fn close_origin(&self, index: usize) {
        debug_assert_eq!(self.ctrl_byte(index), group::FORWARDED);
        self.mark(index, group::DELETED);
    }

    /// Stores `byte` as slot `index`'s control byte (writer only).
    #[inline]
    fn mark(&self, index: usize, byte: u8) {
        let (ctrl, offset) = self.locate(index);
        // Relaxed: the writer holds the lock (see `find_for_write`).
        let group = ctrl.load(Ordering::Relaxed);
        // Release: pairs with readers' Acquire loads, like every control word store.
        ctrl.store(group::with_byte(group, offset, byte), Ordering::Release);
    }

    #[inline]
    fn moved_on_word(&self, index: usize) -> (&AtomicU64, u64) {
        debug_assert!(index < self.end());
        let word = (index / 64) & (self.moved_on.len() - 1);
        // Safety: `moved_on.len()` is a power of two (its invariant), so `word` is in bounds.
        (
            unsafe { self.moved_on.get_unchecked(word) },
            1 << (index % 64),
        )
    }

    /// Whether slot `index` holds (or, DELETED, held) a key that moved on from its origin
    /// (writer only).
    #[inline]
    pub(crate) fn is_moved_on(&self, index: usize) -> bool {
        let (ctrl, _) = self.locate(index);
        let (word, bit) = self.moved_on_word(index);
        // Relaxed, both: only the writer stores control words and bits.
        if !group::may_have_moved_on(ctrl.load(Ordering::Relaxed)) {
            debug_assert_eq!(word.load(Ordering::Relaxed) & bit, 0, "slot {index}");
            return false;
        }
        word.load(Ordering::Relaxed) & bit != 0
    }

    fn set_moved_on(&self, index: usize) {
        let (word, bit) = self.moved_on_word(index);
        // Relaxed, both: only the writer stores the bits, and readers look at a slot's bit only
        // after loading the slot FULL (Acquire) from the control word store that follows.
        word.store(word.load(Ordering::Relaxed) | bit, Ordering::Relaxed);
    }

    /// Whether the slot `index`, seen FULL by an iterator, holds a key that moved on from its
    /// origin (module docs).
    #[inline]
    pub(crate) fn moved_on_for_reader(&self, index: usize) -> bool {
        let (word, bit) = self.moved_on_word(index);
        // Relaxed: the bit was set before the control word's Release store that the caller's
        // load of the slot FULL (Acquire) synchronised with, and is cleared only once no guard
        // that saw the slot FULL is left.
        word.load(Ordering::Relaxed) & bit != 0
    }

    /// Makes the DELETED slot `index` writable again (writer only): EMPTY if its group has an
    /// EMPTY slot, FREE if not. Returns whether it is EMPTY now.
    ///
    /// EMPTY is safe exactly when the group already has one: every probe then stops in this
    /// group anyway, so no key lives further along a path through it. A group with no EMPTY
    /// slot never gets one, so a probe that passed it on the way to its key's slot still finds
    /// the key, and a change of value still finds no EMPTY slot before the old one (see
    /// `find_replacement`). An EMPTY slot costs a table nothing, where a FREE one stays counted
    /// as used: under churn, most recycled slots are EMPTY, and the table does not fill up with
    /// tombstones and migrate.
    ///
    /// `moved_on` says whether the slot's moved-on bit is set (the writer knew when it marked
    /// the slot), which spares a load, most often a cache miss, per recycled slot.
    ///
    /// # Safety
    /// No reader can still hold the slot's entry: every guard that was active when the slot was
    /// marked DELETED has ended since.
    #[inline]
    pub(crate) unsafe fn recycle(&self, index: usize, moved_on: bool) -> bool {
        debug_assert_eq!(self.ctrl_byte(index), group::DELETED);
        debug_assert_eq!(self.is_moved_on(index), moved_on);
        let (ctrl, offset) = self.locate(index);
        // Relaxed: the writer holds the lock (see `find_for_write`).
        let mut group = ctrl.load(Ordering::Relaxed);
        if moved_on {
            let (word, bit) = self.moved_on_word(index);
            // Relaxed: only the writer stores the bits; no reader looks at this one any more.
            let bits = word.load(Ordering::Relaxed) & !bit;
            word.store(bits, Ordering::Relaxed);
            // The group's 8 positions are one byte of the word.
            let group_bits = 0xFF << (index % 64 / POSITIONS * POSITIONS);
            group = group::with_moved_on_hint(group, bits & group_bits != 0);
        }
        // The smoke test's teeth (`scripts/verify`): EMPTY whatever the group holds, which
        // cuts the probe path of keys further along.
        let empty = cfg!(lanemap_broken_empty) || group::match_empty(group).any();
        let byte = if empty { group::EMPTY } else { group::FREE };
        // Release: pairs with readers' Acquire loads, like every control word store.
        ctrl.store(group::with_byte(group, offset, byte), Ordering::Release);
        empty
    }

    /// The first position of `position`'s group.
    #[inline]
    pub(crate) fn group_start(position: usize) -> usize {
        position / POSITIONS * POSITIONS
    }

    /// One past the last position of `position`'s group.
    #[inline]
    pub(crate) fn group_end(position: usize) -> usize {
        Self::group_start(position) + POSITIONS
    }

    /// Starts loading the control word of slot `index` into the cache.
    #[inline]
    pub(crate) fn prefetch_ctrl(&self, index: usize) {
        prefetch(self.locate(index).0);
    }

    /// Starts loading the first group of `hash`'s probe path into the cache (writer only).
    #[inline]
    pub(crate) fn prefetch_group(&self, hash: u64) {
        let group_index = hash as usize & (self.ctrl.len() - 1);
        // In bounds (the mask), but a prefetch may take any address: no check needed.
        prefetch(self.ctrl.as_ptr().wrapping_add(group_index));
        prefetch(
            self.entries
                .as_ptr()
                .wrapping_add(group_index * GROUP_SLOTS),
        );
    }

    /// Starts loading the entries of the first group of `hash`'s probe path into the cache (for
    /// small entries, the lines of its first slots; see `prefetch_group_entries`).
    #[inline]
    pub(crate) fn prefetch_entries(&self, hash: u64) {
        self.prefetch_group_entries(hash as usize & (self.ctrl.len() - 1));
    }

    /// Starts loading the entries of the group holding `position` into the cache: for a
    /// migration, ahead of the group whose keys it hashes. It reads the old table in order, but
    /// a step's few groups are too short a run for the CPU's own prefetcher to follow.
    #[inline]
    pub(crate) fn prefetch_entries_at(&self, position: usize) {
        self.prefetch_group_entries(position / POSITIONS);
    }

    #[inline]
    fn prefetch_group_entries(&self, group_index: usize) {
        prefetch_group_entries::<K, V>(self.entries.as_ptr().cast(), group_index);
    }

    /// The control word of the group of slot `index`, for a reader walking the whole table
    /// (iteration).
    #[inline]
    pub(crate) fn group_for_reader(&self, index: usize) -> u64 {
        let (ctrl, _) = self.locate(index);
        // Acquire: pairs with the writer's Release store of the word, so the entries it
        // publishes (and for a MOVED bit, the entry's copy in `next`) are visible.
        ctrl.load(Ordering::Acquire)
    }

    /// What an iterator holding a copy of slot `index`'s control word finds there.
    #[inline]
    pub(crate) fn state_in(group: u64, index: usize) -> SlotState {
        let offset = index % POSITIONS;
        match group::byte(group, offset) {
            byte if group::is_full(byte) => SlotState::Full {
                moved: group::is_moved(group, offset),
            },
            group::FORWARDED => SlotState::Forwarded,
            _ => SlotState::Unused,
        }
    }

    /// Group indices on `hash`'s probe path: triangular steps, which visit every group of a
    /// power-of-two table exactly once.
    #[inline]
    fn probe(&self, hash: u64) -> impl Iterator<Item = usize> + use<K, V> {
        let mask = self.ctrl.len() - 1;
        let mut position = hash as usize & mask;
        let mut stride = 0;
        (0..self.ctrl.len()).map(move |_| {
            let current = position;
            stride += 1;
            position = (position + stride) & mask;
            current
        })
    }
}

impl<K, V> Drop for Table<K, V> {
    /// Drops the entries the table owns: those of its FULL, unmoved slots. A panic in `K`'s or
    /// `V`'s `Drop` is contained, so that every other entry is still dropped: tables are freed
    /// by reclamation, at an unpredictable point on whichever thread ends the last guard, where
    /// a panic would tear through unrelated code.
    fn drop(&mut self) {
        if !needs_drop::<Node<K, V>>() {
            return;
        }
        for index in self.positions() {
            if self.holds_entry(index) {
                // Safety: a FULL, unmoved slot: the table owns its entry, and `&mut self` means
                // no one else can reach it; it is dropped once, as the table goes.
                let node = unsafe { self.take(index) };
                let _ = catch_unwind(AssertUnwindSafe(move || drop(node)));
            }
        }
    }
}

/// Stores a control word for readers.
#[inline]
fn store_ctrl(ctrl: &AtomicU64, group: u64) {
    // Release: a reader that loads the word (Acquire) sees the entries written before it.
    #[cfg(not(lanemap_broken_publish_node))]
    ctrl.store(group, Ordering::Release);
    // ThreadSanitizer's teeth (`scripts/verify`): a Relaxed publication, so a reader that
    // sees the tag may read the entry before it is written.
    #[cfg(lanemap_broken_publish_node)]
    ctrl.store(group, Ordering::Relaxed);
}

/// Where a shard's writes go, as plain addresses (of the newest table's control words and
/// entries, and its group mask): for the prefetch a write issues before it takes the lock,
/// which an unpinned write, with no guard to keep a table allocated, cannot read from the table
/// itself. Set by the writer under the lock; read racily, which is harmless: a prefetch reads
/// nothing the program sees and never faults, whatever the address.
#[cfg(not(loom))]
pub(crate) struct WriteHint {
    ctrl: AtomicPtr<u8>,
    entries: AtomicPtr<u8>,
    group_mask: crate::sync::AtomicUsize,
}

#[cfg(not(loom))]
impl WriteHint {
    pub(crate) fn new<K, V>(table: &Table<K, V>) -> Self {
        let hint = Self {
            ctrl: AtomicPtr::new(ptr::null_mut()),
            entries: AtomicPtr::new(ptr::null_mut()),
            group_mask: crate::sync::AtomicUsize::new(0),
        };
        hint.aim(table);
        hint
    }

    /// Points the hint at `table`, the shard's new newest table (the lock held).
    pub(crate) fn aim<K, V>(&self, table: &Table<K, V>) {
        // Relaxed: a hint; any mix of old and new values is only a wasted prefetch.
        self.ctrl
            .store(table.ctrl.as_ptr().cast_mut().cast(), Ordering::Relaxed);
        self.entries
            .store(table.entries.as_ptr().cast_mut().cast(), Ordering::Relaxed);
        self.group_mask
            .store(table.ctrl.len() - 1, Ordering::Relaxed);
    }

    /// Starts loading the first group of `hash`'s probe path, control word and entries, into
    /// the cache: for a writer about to take the shard lock, so that the loads overlap each
    /// other and the lock (x86's locked instructions wait for earlier loads, but not for
    /// prefetches). Measured without it, unpinned: exchange at 0.71-0.90x dashmap.
    #[inline]
    pub(crate) fn prefetch<K, V>(&self, hash: u64) {
        // Relaxed: a hint (see the type).
        let group_index = hash as usize & self.group_mask.load(Ordering::Relaxed);
        prefetch(
            self.ctrl
                .load(Ordering::Relaxed)
                .wrapping_add(group_index * size_of::<AtomicU64>()),
        );
        prefetch_group_entries::<K, V>(self.entries.load(Ordering::Relaxed), group_index);
    }
}

/// Under loom, no hint: its atomics would only add states to explore, and a prefetch is a
/// no-op there.
#[cfg(loom)]
pub(crate) struct WriteHint;

#[cfg(loom)]
impl WriteHint {
    pub(crate) fn new<K, V>(_table: &Table<K, V>) -> Self {
        Self
    }

    pub(crate) fn aim<K, V>(&self, _table: &Table<K, V>) {}

    #[inline]
    pub(crate) fn prefetch<K, V>(&self, _hash: u64) {}
}

/// Starts loading the entries of group `group_index` of the table whose entries start at
/// `entries` into the cache.
#[inline]
fn prefetch_group_entries<K, V>(entries: *const u8, group_index: usize) {
    // A prefetch may take any address (even past the end): no check needed.
    let first = entries.wrapping_add(group_index * GROUP_SLOTS * size_of::<Entry<K, V>>());
    let group_bytes = GROUP_SLOTS * size_of::<Entry<K, V>>();
    if group_bytes > 3 * CACHE_LINE {
        // Lines apart: those of its first, middle and last entries.
        for offset in [0, GROUP_SLOTS / 2, GROUP_SLOTS - 1] {
            prefetch(first.wrapping_add(offset * size_of::<Entry<K, V>>()));
        }
        return;
    }
    // Lines 64 bytes apart from its first byte, without a branch on where it starts: a branch
    // on the group's address is a coin flip (for 16-byte entries, whether 112 bytes span two
    // lines or three), and mispredicting it on every other lookup cost about 9% of read-heavy
    // throughput. When the group spills into one line more, that line is left out: it holds
    // only the group's last slots, which a write fills last (it takes a group's first free
    // slot), so they hold an entry least often, and each prefetch holds one of the core's few
    // line-fill buffers that other lookups' misses could use. Measured without the last line's
    // prefetch, read-heavy at 1 thread, 2^21 keys: ÷ the limit 0.89-0.97x (median 0.92x)
    // against 0.79-0.98x (0.84x) with it, 6 alternated pairs.
    for line in 0..group_bytes.div_ceil(CACHE_LINE) {
        prefetch(first.wrapping_add(line * CACHE_LINE));
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

/// One of a table's arrays, all zero bytes when made (entries: any bytes, see [`Contents`]).
/// Zero is EMPTY for control words, and any bit pattern will do for entries not yet written. A
/// large array is mapped straight from the kernel, whose fresh pages are zero and cost nothing
/// until touched; so the migration that fills the table pays for its pages a few at a time. (On
/// Linux, a table's entries take the pages of freed tables where it can, which cost nothing when
/// touched: see `page_pool`.) From the global allocator, a multi-megabyte `alloc_zeroed` or
/// fill took one insert 2-3 ms on the development machine: the allocator zeroes reused memory.
///
/// Holds only types whose values need no drop (atomics and cells of `MaybeUninit`): the table
/// drops the entries it owns itself.
struct Zeroed<T> {
    ptr: NonNull<T>,
    len: usize,
    /// Where `ptr` came from.
    source: Source,
    /// For a mapping, the offsets where the ranges of pages moved in from freed tables begin
    /// and end (see `page_pool`).
    #[cfg_attr(any(not(target_os = "linux"), loom), allow(dead_code))]
    cuts: Vec<usize>,
}

#[derive(Clone, Copy, PartialEq)]
enum Source {
    /// The global allocator, as a `Box<[T]>`.
    Heap,
    /// `mmap`.
    #[cfg_attr(any(not(unix), miri, loom), allow(dead_code))]
    Mapped,
    /// Part of another `Zeroed`'s memory, which frees it.
    #[cfg_attr(any(not(unix), miri, loom), allow(dead_code))]
    Part,
}

// Safety: `Zeroed` owns its items as a `Box<[T]>` would.
unsafe impl<T: Send> Send for Zeroed<T> {}
// Safety: as above.
unsafe impl<T: Sync> Sync for Zeroed<T> {}

/// Arrays from this size up are mapped from the kernel (where the platform allows it).
#[cfg(all(unix, not(miri), not(loom)))]
const MAP_FROM_BYTES: usize = 1 << 20;

/// The kernel's page size.
#[cfg(all(target_os = "linux", not(miri), not(loom)))]
fn page_bytes() -> usize {
    // Safety: `sysconf` only reads a system setting.
    let bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(bytes).unwrap_or(4096)
}

/// A transparent huge page's size (x86_64's, and the usual one on Linux's other platforms).
/// Mappings from this size up start at a multiple of it and ask for huge pages.
#[cfg(all(target_os = "linux", not(miri), not(loom)))]
const HUGE_PAGE_BYTES: usize = 2 << 20;

/// The bytes to map for a table of `bytes`: rounded up to whole huge pages where that costs at
/// most an eighth more, so that the table's last part gets a huge page too. (A table of 2^21
/// slots over 32 shards takes 1.9 MiB a shard: unrounded, none of it could.)
#[cfg(all(unix, not(miri), not(loom)))]
fn mapped_len(bytes: usize) -> usize {
    #[cfg(target_os = "linux")]
    if let Some(rounded) = bytes.checked_next_multiple_of(HUGE_PAGE_BYTES)
        && rounded - bytes <= bytes / 8
    {
        return rounded;
    }
    bytes
}

/// Unmaps the `slack` bytes of a fresh mapping at `ptr` (of `bytes + slack`, `slack` less than
/// a huge page) that lie before the first huge-page boundary in it and after the `bytes` that
/// follow that boundary. Returns the boundary.
#[cfg(all(target_os = "linux", not(miri), not(loom)))]
fn trim_to_huge_page(ptr: *mut u8, bytes: usize, slack: usize) -> *mut libc::c_void {
    let page = page_bytes();
    let head = (ptr as usize).next_multiple_of(HUGE_PAGE_BYTES) - ptr as usize;
    debug_assert!(head <= slack && head % page == 0 && slack % page == 0);
    let kept = bytes.next_multiple_of(page);
    // Safety: `head <= slack`: the boundary, and `kept` bytes after it, lie inside the mapping
    // (its `bytes + slack` bytes, rounded up to pages by the kernel).
    let start = unsafe { ptr.add(head) };
    // Safety: as above.
    let tail = unsafe { start.add(kept) };
    for (at, len) in [(ptr, head), (tail, slack - head)] {
        if len > 0 {
            // Safety: a range of the fresh mapping before the boundary or after the `kept`
            // bytes (see above), which nothing uses.
            let unmapped = unsafe { libc::munmap(at.cast(), len) };
            debug_assert_eq!(unmapped, 0, "munmap of a mapping's slack failed");
        }
    }
    start.cast()
}

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

impl<T> Zeroed<T> {
    /// `len` items (`len >= 1`) of zero bytes, or of any bytes (`Contents::Any`, for types
    /// that any bytes are valid for, initialised or not), or an error if memory runs out.
    /// Under loom, whose atomics and cells are not plain memory, each is `make()` instead.
    #[cfg_attr(not(loom), allow(unused_variables))]
    fn new(len: usize, contents: Contents, make: impl Fn() -> T) -> Result<Self, TryReserveError> {
        const { assert!(!needs_drop::<T>() || cfg!(loom)) };
        let layout =
            std::alloc::Layout::array::<T>(len).map_err(|_| TryReserveError::CapacityOverflow)?;
        #[cfg(all(unix, not(miri), not(loom)))]
        if layout.size() >= MAP_FROM_BYTES {
            return Self::map(len, layout);
        }
        #[cfg(not(loom))]
        let items = heap_box::<T>(len, layout, contents)?;
        // Under loom, items are made one by one: no layout to allocate, no bytes to choose.
        #[cfg(loom)]
        let _ = (layout, contents);
        #[cfg(loom)]
        let items = try_filled(len, make)?;
        Ok(Self {
            // Safety: a `Box`'s pointer is non-null.
            ptr: unsafe { NonNull::new_unchecked(Box::into_raw(items).cast::<T>()) },
            len,
            source: Source::Heap,
            cuts: Vec::new(),
        })
    }

    /// `len` items at `offset` bytes into `base`'s memory, which keeps owning them.
    ///
    /// # Safety
    /// The range lies inside `base`'s mapping, is aligned for `T` and holds valid items (zero
    /// bytes, for the table's types), and `base` outlives the part.
    #[cfg(all(unix, not(miri), not(loom)))]
    unsafe fn part(base: NonNull<u8>, offset: usize, len: usize) -> Self {
        Self {
            // Safety: the caller's contract: inside the mapping, so in bounds and non-null.
            ptr: unsafe { base.add(offset) }.cast::<T>(),
            len,
            source: Source::Part,
            cuts: Vec::new(),
        }
    }

    #[cfg(all(unix, not(miri), not(loom)))]
    fn map(len: usize, layout: std::alloc::Layout) -> Result<Self, TryReserveError> {
        let bytes = layout.size();
        // On Linux, a mapping that can hold a huge page starts at one's boundary: the kernel
        // backs only aligned 2 MiB ranges with huge pages, and places mappings at any page.
        #[cfg(target_os = "linux")]
        let slack = if bytes >= HUGE_PAGE_BYTES {
            HUGE_PAGE_BYTES - page_bytes()
        } else {
            0
        };
        #[cfg(not(target_os = "linux"))]
        let slack = 0;
        let oversized = bytes
            .checked_add(slack)
            .ok_or(TryReserveError::CapacityOverflow)?;
        // Safety: an anonymous private mapping of `oversized` bytes, at an address of the
        // kernel's choosing; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                oversized,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(TryReserveError::AllocError { layout });
        }
        #[cfg(target_os = "linux")]
        let ptr = if slack > 0 {
            trim_to_huge_page(ptr.cast(), bytes, slack)
        } else {
            ptr
        };
        debug_assert!(layout.align() <= 4096);
        // Safety: `mmap` succeeded, so `ptr` is a non-null, page-aligned mapping of zeroed
        // pages, which are valid items (see `heap_box`) at any alignment up to a page's.
        let ptr = unsafe { NonNull::new_unchecked(ptr.cast::<T>()) };
        // Relaxed: a statistic.
        MAPPED_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        Ok(Self {
            ptr,
            len,
            source: Source::Mapped,
            cuts: Vec::new(),
        })
    }
}

impl<T> Zeroed<T> {
    /// See [`Table::advise_huge_pages`]: only for a mapping of at least
    /// [`HUGE_PAGE_BYTES`], and only on Linux.
    fn advise_huge_pages(&self) {
        #[cfg(all(target_os = "linux", not(miri), not(loom)))]
        if self.source == Source::Mapped && self.len * size_of::<T>() >= HUGE_PAGE_BYTES {
            // Safety: advice on this array's own mapping, made by `map` and alive while `self`
            // is; it changes no memory contents.
            unsafe {
                libc::madvise(
                    self.ptr.as_ptr().cast(),
                    self.len * size_of::<T>(),
                    libc::MADV_HUGEPAGE,
                )
            };
        }
    }
}

impl<T> std::ops::Deref for Zeroed<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        // Safety: `len` initialised items at `ptr`, owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for Zeroed<T> {
    fn drop(&mut self) {
        let slice = ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
        match self.source {
            Source::Part => return,
            Source::Heap => {
                // Safety: from `Box::into_raw` in `new`, not freed before.
                drop(unsafe { Box::from_raw(slice) });
                return;
            }
            Source::Mapped => {}
        }
        #[cfg(all(unix, not(miri), not(loom)))]
        {
            let bytes = self.len * size_of::<T>();
            #[cfg(target_os = "linux")]
            {
                let len = bytes.next_multiple_of(page_bytes());
                // Safety: the mapping made in `map`, of exactly this size (rounded up to pages,
                // as the kernel mapped it), given back once. Its items need no drop (see the
                // type's docs).
                unsafe { super::page_pool::give_back(self.ptr.as_ptr().cast(), len, &self.cuts) };
            }
            #[cfg(not(target_os = "linux"))]
            {
                // Safety: the mapping made in `map`, of exactly this size, unmapped once. Its
                // items need no drop (see the type's docs).
                let unmapped = unsafe { libc::munmap(self.ptr.as_ptr().cast(), bytes) };
                debug_assert_eq!(unmapped, 0, "munmap of a table failed");
            }
            // Relaxed: a statistic.
            MAPPED_BYTES.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

/// What a new array's bytes must be.
#[derive(Clone, Copy)]
enum Contents {
    Zero,
    /// Anything, even uninitialised: for entries (`UnsafeCell<MaybeUninit<_>>`).
    #[cfg_attr(loom, allow(dead_code))]
    Any,
}

/// `len` items from the global allocator, zero bytes or left as they come.
///
/// Only for the table's item types: all-zero bytes are a valid zero `AtomicU64`, and any bytes
/// (initialised or not) a valid `UnsafeCell<MaybeUninit<_>>`.
#[cfg(not(loom))]
fn heap_box<T>(
    len: usize,
    layout: std::alloc::Layout,
    contents: Contents,
) -> Result<Box<[T]>, TryReserveError> {
    if layout.size() == 0 {
        // Entries of a zero-sized key and value (a `HashMap<(), ()>`): nothing to allocate, and
        // the global allocator must not be asked for zero bytes.
        // Safety: for a zero-sized `T`, a dangling, aligned pointer is a valid `Box<[T]>` of any
        // length, and `T` takes any (no) bytes.
        return Ok(unsafe {
            Box::from_raw(ptr::slice_from_raw_parts_mut(
                NonNull::<T>::dangling().as_ptr(),
                len,
            ))
        });
    }
    let items = match contents {
        // Safety: a non-zero size (checked above).
        Contents::Zero => unsafe { std::alloc::alloc_zeroed(layout) },
        // Safety: as above.
        Contents::Any => unsafe { std::alloc::alloc(layout) },
    }
    .cast::<T>();
    if items.is_null() {
        return Err(TryReserveError::AllocError { layout });
    }
    // Safety: the bytes are valid for `T` (see above: zero when asked, else `T` takes any),
    // the memory has the layout of `[T; len]` and comes from the global allocator, as `Box`
    // requires.
    Ok(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(items, len)) })
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

#[cfg(all(test, target_os = "linux", not(miri), not(loom)))]
mod tests {
    use super::{HUGE_PAGE_BYTES, HugePages, Table, mapped_len};

    #[test]
    fn mapped_len_rounds_up_to_huge_pages_only_when_cheap() {
        const MIB: usize = 1 << 20;
        // A shard's table of 2^16 u64 entries: 1.98 MiB.
        assert_eq!(mapped_len(2_048 * 1_000 - 3), 2 * MIB);
        assert_eq!(mapped_len(4 * MIB), 4 * MIB);
        assert_eq!(mapped_len(15 * MIB + 1), 16 * MIB);
        // An eighth more or less stays as it is: huge pages for all but its tail.
        assert_eq!(mapped_len(MIB + MIB / 2), MIB + MIB / 2);
        assert_eq!(mapped_len(5 * MIB), 5 * MIB);
        assert_eq!(mapped_len(usize::MAX - 10), usize::MAX - 10);
    }

    /// A table big enough for a huge page starts on a huge-page boundary and is mapped in
    /// whole huge pages, whether or not it asks for them now; its entries stay usable to the
    /// last slot.
    #[test]
    fn large_tables_are_mapped_on_huge_page_boundaries() {
        for pages in [HugePages::Now, HugePages::WhenFilled] {
            // 2^14 groups of u64 pairs: just under 2 MiB.
            let capacity = Table::<u64, u64>::capacity_for(70_000).unwrap();
            let table = Table::<u64, u64>::try_new(capacity, pages).unwrap();
            let block = table._block.as_ref().expect("a mapped table");
            assert_eq!(block.ptr.as_ptr() as usize % HUGE_PAGE_BYTES, 0);
            assert_eq!(block.len % HUGE_PAGE_BYTES, 0);
            assert_eq!(table.ctrl.as_ptr() as usize, block.ptr.as_ptr() as usize);
            let end = table.entries.as_ptr_range().end as usize;
            assert!(end <= block.ptr.as_ptr() as usize + block.len);
            // Every byte of the mapping can be written (the trimmed slack was outside it).
            // Safety: `block.len - 1` is inside the mapping, so the offset stays in bounds.
            let last = unsafe { block.ptr.as_ptr().add(block.len - 1) };
            // Safety: the block's own byte, past the control words; no entry is FULL, so no
            // entry is read.
            unsafe { last.write(1) };
            assert!(
                table
                    .ctrl
                    .iter()
                    .all(|word| word.load(super::Ordering::Relaxed) == 0)
            );
        }
    }
}
