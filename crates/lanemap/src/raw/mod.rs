//! The lock-free-read map's internals: every `unsafe` block of [`HashMap`](crate::HashMap)
//! lives in this module and its children.
//!
//! Layout: shards chosen by hash bits, as in [`ShardedMap`](crate::ShardedMap). Each shard has
//!
//! - `current`: the table readers start from;
//! - a writer lock, under which one writer at a time changes the shard's tables;
//! - `len`, the entry count as of the last write.
//!
//! **Reads** take no lock and store nothing: they protect loads with the reclamation guard
//! (seize), probe `current`, and follow `next` when a slot says MOVED or when the key is absent
//! but a migration is under way.
//!
//! **Writes** lock their shard, then publish entries, inline in the table, with `Release`
//! stores. A FULL slot's entry is never written over: changing a value writes the new entry
//! into an unused slot and marks the old slot DELETED, so a reader holding the old entry keeps
//! a consistent key and value until its guard ends (`table.rs` has the protocol). DELETED
//! slots are reused once a grace period has passed (see [`RECYCLE_BATCH`]), and the keys and
//! values taken out of them are dropped after one too (see [`RETIRE_BATCH`]); types that need
//! no drop skip that step altogether.
//!
//! **Resizing** is incremental. When a table's used slots (entries and tombstones not yet
//! reused) reach its load limit, or when it mostly empties, the writer allocates the
//! next table (sized for the live entries with room to spare), links it from the old one's
//! `next`, and from then on every write to the shard first moves [`MIGRATE_CHUNK`] slots of the
//! old table (and the slot of the key it is about to write). A moved slot keeps its bytes with
//! its MOVED bit set, so readers know to look in `next`. When every slot has moved, `current`
//! switches to the new table and the old one is retired. No single operation copies more than
//! [`MIGRATE_CHUNK`] slots, except `clear`, `retain`, `shrink_to_fit` and `try_reserve`, which
//! finish a running migration first.

pub(crate) mod group;
pub(crate) mod node;
pub(crate) mod table;
mod writer_lock;

mod iter;
#[cfg(all(target_os = "linux", not(miri), not(loom)))]
pub(crate) mod page_pool;

pub(crate) use iter::Cursor;

use crate::error::TryReserveError;
use crate::reclaim::{Collector, Guard, Retire, collector};
use crate::sync::{AtomicPtr, AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;
use equivalent::Equivalent;
use node::Node;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, needs_drop};
use std::panic::{AssertUnwindSafe, catch_unwind};
use table::{HugePages, Lookup, MIN_CAPACITY, Moves, Reuse, Slot, Table, WriteHint};
use writer_lock::{WriterGuard, WriterLock};

/// Old-table slot positions (see `table.rs`; 7 slots per 8) a write moves to the new table
/// while a migration runs.
///
/// A migration of a table of `P` positions therefore ends after at most `P / MIGRATE_CHUNK`
/// writes (rounded up), which bounds how many entries the new table must hold beyond those it
/// inherits.
#[cfg(not(loom))]
pub(crate) const MIGRATE_CHUNK: usize = 128;
/// Small under loom, so that a migration of a tiny model table spans several writes.
#[cfg(loom)]
pub(crate) const MIGRATE_CHUNK: usize = 2;

/// Removed or replaced entries (of types that need dropping) a shard's writer gathers before it
/// hands them to reclamation, as one object.
///
/// Retiring each with seize would cost about 90 instructions per remove or replace (a
/// thread-local lookup, a batch push, and a share of a process-wide barrier per batch); a
/// batch queued under the shard lock costs a few. A removed entry thus waits for at most
/// `RETIRE_BATCH - 1` later removals in its shard (or for `flush_removed`, `clear`, the shard
/// emptying, or the map dropping) before its grace period starts.
#[cfg(not(loom))]
const RETIRE_BATCH: usize = 32;
/// Small under loom, so that the models cover both a queued and a handed-over node.
#[cfg(loom)]
const RETIRE_BATCH: usize = 2;

/// DELETED slots a shard's writer gathers before it hands them to reclamation, to have them
/// back, FREE for reuse, once their grace period is over. Without reuse, every removal would
/// spend a slot until the next migration, and churn (inserts and removes of different keys)
/// would migrate the table every few thousand writes.
#[cfg(not(loom))]
const RECYCLE_BATCH: usize = 64;
#[cfg(loom)]
const RECYCLE_BATCH: usize = 2;

pub(crate) struct RawMap<K, V, S> {
    /// Invariant: a power of two long, at most 2^16 (`sharded::MAX_SHARDS`).
    shards: Box<[ShardSlot<K, V>]>,
    /// How far to shift a hash right, and what to mask then, for the byte offset of its shard
    /// (see [`RawMap::shard`]).
    shard_shift: u32,
    shard_mask: usize,
    pub(crate) hasher: S,
    collector: Collector,
    /// The map owns `K`s and `V`s (drop check), and its auto traits are replaced by the explicit
    /// impls below: the table pointers inside would otherwise make it `Send` and `Sync` for any
    /// `K` and `V`.
    _owns: PhantomData<(Box<Node<K, V>>, *const ())>,
}

// Safety: the map owns its keys and values, so moving it to another thread moves them; that
// needs `K: Send` and `V: Send`, and the hasher moves along (`S: Send`). The collector is Send.
unsafe impl<K: Send, V: Send, S: Send> Send for RawMap<K, V, S> {}

// Safety: through `&RawMap`, threads read keys and values concurrently (`K: Sync`, `V: Sync`),
// and a value inserted by one thread may be dropped by another when it is removed or reclaimed
// (`K: Send`, `V: Send`). The hasher is shared (`S: Sync`); all else is atomics and locks.
unsafe impl<K: Send + Sync, V: Send + Sync, S: Sync> Sync for RawMap<K, V, S> {}

/// In C order, so that what every write touches shares one cache line: `len`, `recycled`, the
/// lock and the first fields of [`Writer`] (`tests::hot_shard_fields_share_a_cache_line`). Left
/// to the compiler, they spread over three, and at 2 threads a write that takes the shard over
/// from the other core waited for each of them.
#[repr(C)]
struct Shard<K, V> {
    /// The table readers start from. Invariant: non-null; retired only after being replaced.
    ///
    /// On a cache line of its own: every lookup reads it, while every write changes the lock
    /// and `len`; sharing their line, it would be evicted from other cores' caches by each
    /// write to the shard (a miss per lookup after a write, 8 shards on 2 cores).
    current: CachePadded<AtomicPtr<Table<K, V>>>,
    /// Entry count as of the last write.
    len: AtomicUsize,
    /// Batches of DELETED slots whose grace period is over, pushed by reclamation, taken by the
    /// writer (see [`RECYCLE_BATCH`]). Beside the lock, which every write changes anyway.
    recycled: AtomicPtr<Recycled>,
    writer: WriterLock<Writer<K, V>>,
    /// Where writes go, for their prefetch before they take the lock. Last, on a line that
    /// writes read and only a new table changes.
    write_hint: WriteHint,
}

/// A shard alone on a power-of-two number of bytes (a few cache lines), so that finding one
/// is a shift and a mask of the hash (see [`RawMap::shard`]). Under loom, whose atomics and
/// locks are larger, on more of them.
#[cfg_attr(not(loom), repr(C, align(512)))]
#[cfg_attr(loom, repr(C, align(4096)))]
struct ShardSlot<K, V>(Shard<K, V>);

impl<K, V> std::ops::Deref for ShardSlot<K, V> {
    type Target = Shard<K, V>;

    fn deref(&self) -> &Shard<K, V> {
        &self.0
    }
}

impl<K, V> std::ops::DerefMut for ShardSlot<K, V> {
    fn deref_mut(&mut self) -> &mut Shard<K, V> {
        &mut self.0
    }
}

/// The bit of a queued DELETED slot's position that says its moved-on bit is set.
const MOVED_ON_FLAG: u32 = 31;

/// A DELETED slot as [`Recycled`] keeps it: its position, and whether its moved-on bit is set
/// in [`MOVED_ON_FLAG`]. Positions fit below the flag: tables have fewer than 2^31
/// (`Table::capacity_for`).
#[inline]
fn queued(index: usize, moved_on: bool) -> u32 {
    index as u32 | u32::from(moved_on) << MOVED_ON_FLAG
}

/// The position and moved-on flag of a slot [`queued`] for recycling.
#[inline]
fn unqueued(entry: u32) -> (usize, bool) {
    (
        (entry & !(1 << MOVED_ON_FLAG)) as usize,
        entry >> MOVED_ON_FLAG != 0,
    )
}

/// Positions of DELETED slots of one table, on their way through a grace period.
struct Recycled {
    /// Which of the shard's tables they are in (see `Writer::generation`).
    generation: u64,
    /// Each with [`MOVED_ON_FLAG`] set if the slot's moved-on bit is.
    positions: Vec<u32>,
    /// The next batch on the shard's `recycled` stack.
    next: *mut Recycled,
    /// The shard's `recycled` stack, where reclamation pushes the batch.
    home: *const AtomicPtr<Recycled>,
}

/// What a removal (the entry) or a change of value (the old value; the key stays, with the new
/// entry) takes out of a slot, to drop after a grace period.
enum Dead<K, V> {
    Entry(Node<K, V>),
    Value(V),
}

/// What the writer unlinked, to hand to reclamation once the shard's lock is released (see
/// [`ShardLock`]).
enum Outgoing<K, V> {
    /// A batch of DELETED slots, from [`Writer::hand_over_pending`].
    Recycled(*mut Recycled),
    /// Removed entries and replaced values, from [`Writer::hand_over`].
    Dead(*mut Vec<Dead<K, V>>),
    /// A table no longer `current`: outgrown by a migration (it owns no entry, every slot is
    /// MOVED or DELETED), or replaced by `reset` (it drops the entries it holds).
    Table(*mut Table<K, V>),
}

impl<K, V> Outgoing<K, V> {
    /// Hands the object to reclamation.
    ///
    /// # Safety
    /// Guards created from now on cannot reach the object. (Those that could were created
    /// before it was unlinked: reclamation waits for them if they are still active.)
    unsafe fn retire(self, guard: &impl Retire) {
        match self {
            // Safety: unreachable for new guards (the caller's contract), boxed by the writer and
            // handed over once; `return_recycled` only pushes the batch onto its shard's stack,
            // which lives as long as the map (whose drop runs every reclaimer first).
            Outgoing::Recycled(batch) => unsafe { guard.defer_retire(batch, return_recycled) },
            // Safety: unreachable for new guards (the caller's contract), boxed by the writer and
            // handed over once.
            Outgoing::Dead(batch) => unsafe { guard.defer_retire(batch, reclaim_batch::<K, V>) },
            // Safety: unreachable for new guards (the caller's contract); a Box from
            // `Table::try_new`, handed over once.
            Outgoing::Table(table) => unsafe { guard.defer_retire(table, reclaim_table::<K, V>) },
        }
    }
}

/// What only the shard's writer touches: first what every write reads or changes (in C order,
/// see [`Shard`]), then what migrations, removals and values that need dropping use.
#[repr(C)]
struct Writer<K, V> {
    /// The table writes go to: `current`, or during a migration `current.next`.
    /// Invariant: non-null, owned by the shard.
    newest: *mut Table<K, V>,
    /// Live entries in the shard.
    live: usize,
    /// Non-EMPTY slots (entries and tombstones) in `newest`.
    used: usize,
    /// FREE slots in `newest`: recycled, not yet filled again. (Positions fit in 32 bits:
    /// `Table::capacity_for`.)
    free: u32,
    /// Below this many live entries, a removal shrinks `newest` (a sixteenth of its slots).
    low_water: u32,
    /// Whether a migration runs (`current != newest`).
    migrating: bool,
    /// Whether `outbox` holds anything: beside the other hot fields, so that unlocking reads no
    /// other line.
    outgoing: bool,
    /// `newest.max_used()`, kept at hand: computing it reloads the table's length after every
    /// atomic operation.
    max_used: u32,
    /// DELETED slots of `newest` not yet handed to reclamation (see [`RECYCLE_BATCH`]).
    pending: Vec<u32>,
    /// During a migration: the next slot of `current` to move.
    cursor: usize,
    /// Keys and values taken out of slots marked DELETED or FORWARDED, not yet handed to
    /// reclamation (see [`RETIRE_BATCH`]). Invariant: the slots' bytes (which readers may still
    /// hold) alias them, so they are dropped only once every guard that could have seen the
    /// slot FULL is gone; empty for types that need no drop.
    retired: Vec<Dead<K, V>>,
    /// What was taken out of `newest` while a migration runs. The old table, still `current`,
    /// may keep such an entry's MOVED copy, whose key readers compare before they look at the
    /// MOVED bit; so these wait until the old table is no longer `current`, and join `retired`
    /// then.
    deferred: Vec<Dead<K, V>>,
    /// Counts the tables `newest` has been, so that a batch of recycled slots of an earlier one
    /// is told apart (its slots are gone with that table).
    generation: u64,
    /// For each slot of `newest` whose key moved on from its origin (its `moved_on` bit set):
    /// the origin's position, to mark DELETED when the key leaves.
    origins: hashbrown::HashMap<u32, u32, foldhash::fast::FixedState>,
    /// What the writer unlinked under the lock, for [`ShardLock`] to hand to reclamation once
    /// the lock is released.
    outbox: Vec<Outgoing<K, V>>,
}

impl<K, V> Writer<K, V> {
    fn new(table: *mut Table<K, V>) -> Self {
        let mut writer = Self {
            newest: table,
            live: 0,
            used: 0,
            low_water: 0,
            max_used: 0,
            cursor: 0,
            migrating: false,
            outgoing: false,
            retired: Vec::new(),
            deferred: Vec::new(),
            pending: Vec::new(),
            free: 0,
            generation: 0,
            origins: hashbrown::HashMap::default(),
            outbox: Vec::new(),
        };
        writer.measure(table);
        writer
    }

    /// Caches what the writes check of `table`, the new `newest`.
    fn measure(&mut self, table: *mut Table<K, V>) {
        // Safety: `table` is owned by the shard, whose lock (or `&mut` access) the caller has.
        let table = unsafe { &*table };
        // Below 2^31 (`Table::capacity_for`).
        self.max_used = table.max_used() as u32;
        self.low_water = (table.capacity() / 16) as u32;
    }

    /// Queues `object`, unlinked from every table guards created from now on can reach, for
    /// reclamation once the shard's lock is released (see [`ShardLock`]).
    fn send_later(&mut self, object: Outgoing<K, V>) {
        self.outbox.push(object);
        self.outgoing = true;
    }

    /// `newest` is a new table: forget the old one's DELETED slots and origins.
    fn new_table(&mut self, table: *mut Table<K, V>) {
        self.newest = table;
        self.measure(table);
        self.used = 0;
        self.cursor = 0;
        self.pending.clear();
        self.free = 0;
        self.origins.clear();
        self.generation = self.generation.wrapping_add(1);
    }

    /// Whether probes for a new entry's slot should consider FREE ones.
    #[inline]
    fn reuse(&self) -> Reuse {
        if self.free > 0 {
            Reuse::Free
        } else {
            Reuse::EmptyOnly
        }
    }

    /// Counts a slot of `newest` filled by a new entry: a used slot more if it was EMPTY, a FREE
    /// one less if not.
    #[inline]
    fn filled(&mut self, was_empty: bool) {
        if was_empty {
            self.used += 1;
        } else {
            self.free -= 1;
        }
    }

    /// Whether a new entry may go in the FREE or EMPTY slot `index` of `table`, the newest: a
    /// FREE one always, an EMPTY one while the table is under its load limit.
    #[inline]
    fn has_room(&self, table: &Table<K, V>, index: usize) -> bool {
        self.used < self.max_used as usize || table.ctrl_byte(index) == group::FREE
    }

    /// Queues the DELETED slot `index` of `newest` for reuse after a grace period; `moved_on`
    /// says whether its moved-on bit is set (see `Table::recycle`).
    #[inline(always)]
    fn deleted(&mut self, index: usize, moved_on: bool, home: &AtomicPtr<Recycled>) {
        // The loom models' teeth: the slot is made FREE at once, with no grace period, so an
        // insert may write over an entry a reader still holds.
        #[cfg(lanemap_broken_recycle)]
        {
            let _ = home;
            // Safety: none; this variant exists to be caught.
            if unsafe { (*self.newest).recycle(index, moved_on) } {
                self.used -= 1;
            } else {
                self.free += 1;
            }
            return;
        }
        if self.pending.capacity() == 0 {
            self.pending.reserve_exact(RECYCLE_BATCH);
        }
        self.pending.push(queued(index, moved_on));
        if self.pending.len() >= RECYCLE_BATCH {
            self.hand_over_pending(home);
        }
    }

    /// Hands the full batch of DELETED slots to reclamation when the lock is released (out of
    /// line: one removal or change of value in [`RECYCLE_BATCH`] does it).
    #[cold]
    #[inline(never)]
    fn hand_over_pending(&mut self, home: &AtomicPtr<Recycled>) {
        let batch = Box::into_raw(Box::new(Recycled {
            generation: self.generation,
            positions: std::mem::take(&mut self.pending),
            next: std::ptr::null_mut(),
            home,
        }));
        self.send_later(Outgoing::Recycled(batch));
    }

    /// Makes FREE the slots of every batch whose grace period is over (out of line: most
    /// writes find none).
    #[cold]
    #[inline(never)]
    fn reuse_recycled(&mut self, home: &AtomicPtr<Recycled>) {
        // Acquire: pairs with `return_recycled`'s Release push, so the batches' contents, and
        // the end of their grace periods, happen before the reuse.
        let mut batch = home.swap(std::ptr::null_mut(), Ordering::Acquire);
        while !batch.is_null() {
            // Safety: pushed by `return_recycled`, taken off the stack by the swap above: ours.
            let recycled = unsafe { Box::from_raw(batch) };
            batch = recycled.next;
            if recycled.generation != self.generation {
                continue;
            }
            // Safety: `newest` is owned by the shard and we hold its lock.
            let table = unsafe { &*self.newest };
            // The slots are scattered over the table: start every miss at once rather than
            // one after the other.
            for &entry in &recycled.positions {
                table.prefetch_ctrl(unqueued(entry).0);
            }
            for &entry in &recycled.positions {
                let (position, moved_on) = unqueued(entry);
                // Safety: the slot was marked DELETED before the batch was handed to
                // reclamation, which returned it only once every guard active then had ended.
                if unsafe { table.recycle(position, moved_on) } {
                    self.used -= 1;
                } else {
                    self.free += 1;
                }
            }
        }
    }

    /// Drops `dead`, just taken out of a slot of the shard's newest table that is now marked
    /// DELETED or FORWARDED, once no reader can hold that slot's bytes: after a grace period,
    /// or, while a migration runs, after its end and then a grace period (see `deferred`). A
    /// type that needs no drop has nothing to wait for.
    #[inline]
    fn retire(&mut self, dead: Dead<K, V>) {
        if !needs_drop::<Dead<K, V>>() {
            return;
        }
        if self.migrating {
            self.deferred.push(dead);
            return;
        }
        if self.retired.capacity() == 0 {
            self.retired.reserve_exact(RETIRE_BATCH);
        }
        self.retired.push(dead);
        if self.retired.len() >= RETIRE_BATCH {
            self.hand_over();
        }
    }

    /// Hands the queued entries to reclamation as one batch, when the lock is released (see
    /// [`ShardLock`]): dropped once every guard active then has ended (every guard that could
    /// have seen one of their slots FULL was active when the slot was marked DELETED, which was
    /// earlier).
    fn hand_over(&mut self) {
        if self.retired.is_empty() {
            return;
        }
        // Guards created from now on cannot reach what the batch holds: DELETED slots are
        // skipped by every probe and walk, and of a FORWARDED one (a change of value's origin)
        // a walk reads only the key, which is not in the batch (it lives on with the new entry).
        let batch = Box::into_raw(Box::new(std::mem::take(&mut self.retired)));
        self.send_later(Outgoing::Dead(batch));
    }
}

// Safety: `newest` points to a table the shard owns, and is only used by the thread holding the
// writer lock, which is what moving `Writer` between threads amounts to; the queued entries'
// `K` and `V` move with it.
unsafe impl<K: Send, V: Send> Send for Writer<K, V> {}

impl<K, V, S> RawMap<K, V, S> {
    pub(crate) fn new(shards: usize, capacity: usize, hasher: S) -> Self {
        debug_assert!(shards.is_power_of_two());
        let per_shard = Table::<K, V>::capacity_for(capacity.div_ceil(shards))
            .unwrap_or_else(|error| panic!("lanemap: HashMap::with_capacity({capacity}): {error}"));
        let shards: Box<[_]> = (0..shards)
            .map(|_| {
                let table = Table::try_new(per_shard, HugePages::Now).unwrap_or_else(|error| {
                    panic!("lanemap: HashMap::with_capacity({capacity}): {error}")
                });
                let write_hint = WriteHint::new(&table);
                let table = Box::into_raw(table);
                ShardSlot(Shard {
                    current: CachePadded::new(AtomicPtr::new(table)),
                    len: AtomicUsize::new(0),
                    recycled: AtomicPtr::new(std::ptr::null_mut()),
                    writer: WriterLock::new(Writer::new(table)),
                    write_hint,
                })
            })
            .collect();
        // A shard is picked by the 16 (at most) hash bits just below the 7-bit tag, bits
        // `57 - log2(shards) .. 57`; tables index with the low bits. Its byte offset is that
        // index times the slot size, a power of two: shifting by that many bits less keeps them
        // in place, and the mask clears the bits below.
        let stride = size_of::<ShardSlot<K, V>>();
        assert!(
            stride.is_power_of_two(),
            "lanemap internal error: shard slot of {stride} bytes"
        );
        let shard_shift = 57 - shards.len().trailing_zeros() - stride.trailing_zeros();
        let shard_mask = (shards.len() - 1) * stride;
        Self {
            shards,
            shard_shift,
            shard_mask,
            hasher,
            collector: collector(),
            _owns: PhantomData,
        }
    }

    /// An address unique to this map while it is borrowed, for the re-entrancy check.
    #[inline]
    pub(crate) fn id(&self) -> usize {
        self.shards.as_ptr() as usize
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub(crate) fn collector(&self) -> &Collector {
        &self.collector
    }

    /// Panics unless `guard` belongs to this map: a guard of another map protects nothing here.
    #[inline]
    pub(crate) fn verify(&self, guard: &impl Guard) {
        assert!(
            std::ptr::eq(guard.collector(), &raw const self.collector),
            "lanemap: a guard from another map was used with this HashMap; \
             create guards with this map's `guard()` or `pin()`"
        );
    }

    pub(crate) fn len(&self) -> usize {
        // Relaxed: a statistic; see `Shard::len`.
        self.shards
            .iter()
            .map(|shard| shard.len.load(Ordering::Relaxed))
            .sum()
    }

    /// Entries the shards' newest tables hold before they migrate: their entries, and the
    /// never-used slots left before the load limit (a lower bound: tombstones made FREE take
    /// entries too).
    pub(crate) fn capacity(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let writer = shard.writer.lock();
                // Safety: `newest` is owned by the shard and we hold its lock.
                let max_used = unsafe { &*writer.newest }.max_used();
                writer.live + max_used.saturating_sub(writer.used)
            })
            .sum()
    }

    /// The shard of `hash`: a shift, a mask and an add (see `new`).
    #[inline]
    fn shard(&self, hash: u64) -> &Shard<K, V> {
        let offset = (hash >> self.shard_shift) as usize & self.shard_mask;
        debug_assert!(offset / size_of::<ShardSlot<K, V>>() < self.shards.len());
        // Safety: `offset` is a multiple of the slot size below `shards.len()` slots (`new`
        // made the mask so), so it is the offset of one of the shards: in bounds.
        let slot = unsafe { self.shards.as_ptr().byte_add(offset) };
        // Safety: as above, a shard of `self.shards`, borrowed with `self`.
        unsafe { &(*slot).0 }
    }

    /// The node for `key`, if present, valid while `guard` lives.
    #[inline]
    pub(crate) fn get<'g, Q>(
        &self,
        hash: u64,
        key: &Q,
        guard: &'g impl Guard,
    ) -> Option<&'g Node<K, V>>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let shard = self.shard(hash);
        // Acquire: pairs with the Release store that installed the table, so its contents are
        // visible.
        let table = guard.protect(&*shard.current, Ordering::Acquire);
        Self::get_from(table, hash, key, guard)
    }

    /// Looks `key` up starting at `table` and following `next` links.
    #[inline]
    pub(super) fn get_from<'g, Q>(
        mut table: *mut Table<K, V>,
        hash: u64,
        key: &Q,
        guard: &'g impl Guard,
    ) -> Option<&'g Node<K, V>>
    where
        Q: Equivalent<K> + ?Sized,
    {
        loop {
            // Safety: `table` was loaded through `guard` from `current` or a `next` link while
            // linked; tables are retired only after being unlinked from `current`, so it stays
            // allocated while `guard` lives.
            let t = unsafe { &*table };
            match t.lookup(hash, key, guard) {
                Lookup::Found(node) => return Some(node),
                // Moved: the entry's copy is in `next`, published before the MOVED bit we saw.
                // Absent: a migration may have put the key in `next` directly.
                Lookup::Moved | Lookup::Absent => {
                    // Acquire: pairs with the Release store that linked the next table.
                    table = guard.protect(&t.next, Ordering::Acquire);
                    if table.is_null() {
                        return None;
                    }
                }
            }
        }
    }
}

/// Writes: they may migrate, which hashes the keys it moves (entries do not store their hash).
impl<K: Hash, V, S: BuildHasher> RawMap<K, V, S> {
    /// Locks the shard of `hash` for a write to `key`, migrating a chunk first if one is due.
    ///
    /// Always inlined: left to the compiler it stayed a call, whose register saves and restores
    /// cost about 25 instructions per write (callgrind).
    #[inline(always)]
    pub(crate) fn lock<'m, 'g, G: Retire, Q>(
        &'m self,
        hash: u64,
        key: &Q,
        guard: &'g G,
    ) -> Locked<'m, 'g, K, V, S, G>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let (shard, writer) = self.lock_shard(hash, guard);
        Self::locked(shard, writer, &self.hasher, hash, key)
    }

    /// Inserts `key` with `value`; if it replaces an entry, returns what `on_replaced` makes of
    /// it (run with the lock held): what [`lock`](Self::lock), then [`Locked::insert`] or
    /// [`Locked::replace`], do.
    ///
    /// A new key, in a shard that neither migrates nor has recycled slots to take back, and
    /// whose probe ends at a slot it may fill, is published straight away. That is most
    /// inserts, and without a [`Locked`] to build (and keep in memory across the calls of the
    /// other cases) each runs about 12% fewer instructions (callgrind, rapid-grow: 207 to 181
    /// per insert, migrations aside).
    ///
    /// # Panics
    /// If the table cannot grow.
    #[inline(always)]
    pub(crate) fn insert_with<G: Retire, R>(
        &self,
        hash: u64,
        key: K,
        value: V,
        guard: &G,
        on_replaced: impl FnOnce(&Node<K, V>) -> R,
    ) -> Option<R>
    where
        K: Eq,
    {
        let (shard, mut writer) = self.lock_shard(hash, guard);
        if Self::upkeep_due(shard, &writer) {
            return Self::locked(shard, writer, &self.hasher, hash, &key).insert_or_replace(
                key,
                value,
                on_replaced,
            );
        }
        // Safety: `newest` is owned by the shard and we hold its lock.
        let table = unsafe { &*writer.newest };
        let slot = table.find_for_write(hash, &key, writer.reuse());
        if let Some(Slot::Vacant { index }) = slot
            && writer.has_room(table, index)
        {
            let was_empty = table.publish(index, Node { key, value }, group::tag(hash));
            writer.filled(was_empty);
            writer.live += 1;
            // Relaxed: as in `Locked::drop`.
            shard.len.store(writer.live, Ordering::Relaxed);
            return None;
        }
        Locked {
            shard,
            hasher: &self.hasher,
            writer,
            hash,
            slot,
        }
        .insert_or_replace(key, value, on_replaced)
    }

    /// Inserts `key` with `value`, returning the entry it replaced, if any, valid while the
    /// (pinned) guard lives.
    ///
    /// # Panics
    /// If the table cannot grow.
    #[inline(always)]
    pub(crate) fn insert<'g, G: Guard>(
        &self,
        hash: u64,
        key: K,
        value: V,
        guard: &'g G,
    ) -> Option<&'g Node<K, V>>
    where
        K: Eq,
    {
        let replaced = self.insert_with(hash, key, value, guard, |node| node as *const Node<K, V>);
        // Safety: an entry seen FULL under the shard lock while `guard` was active, which keeps
        // its table allocated and its slot unused for 'g (`Table::node_for_guard`).
        replaced.map(|node| unsafe { &*node })
    }

    /// Locks the shard of `hash` for a change to `key` (a removal, or a new value): `None`, and
    /// unlocked again, if the key is absent.
    ///
    /// As in [`insert`](Self::insert), a shard that neither migrates nor has recycled slots to
    /// take back is probed at once, and an absent key costs no [`Locked`]; the probe does not
    /// look for a vacancy, which a change does not need.
    #[inline(always)]
    pub(crate) fn lock_present<'m, 'g, G: Retire, Q>(
        &'m self,
        hash: u64,
        key: &Q,
        guard: &'g G,
    ) -> Option<Locked<'m, 'g, K, V, S, G>>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let (shard, writer) = self.lock_shard(hash, guard);
        if Self::upkeep_due(shard, &writer) {
            let locked = Self::locked(shard, writer, &self.hasher, hash, key);
            return locked.node().is_some().then_some(locked);
        }
        // Safety: `newest` is owned by the shard and we hold its lock.
        let table = unsafe { &*writer.newest };
        match table.find_for_write(hash, key, Reuse::EmptyOnly) {
            Some(Slot::Occupied { index }) => Some(Locked {
                shard,
                hasher: &self.hasher,
                writer,
                hash,
                slot: Some(Slot::Occupied { index }),
            }),
            // Nothing changed: dropping `writer` unlocks, with no count to store.
            _ => None,
        }
    }

    /// Whether a write to the locked shard has upkeep to do before it probes (what
    /// [`locked`](Self::locked) does): recycled slots to take back, or a migration's chunk.
    #[inline(always)]
    fn upkeep_due(shard: &Shard<K, V>, writer: &Writer<K, V>) -> bool {
        // Relaxed: a hint, as in `locked`.
        !shard.recycled.load(Ordering::Relaxed).is_null() || Self::migrating(shard, writer)
    }

    /// Takes the lock of `hash`'s shard, having started to load the key's first group.
    #[inline(always)]
    fn lock_shard<'m, 'g, G: Retire>(
        &'m self,
        hash: u64,
        guard: &'g G,
    ) -> (&'m Shard<K, V>, ShardLock<'m, 'g, K, V, G>) {
        let shard = self.shard(hash);
        shard.write_hint.prefetch::<K, V>(hash);
        (shard, ShardLock::new(shard, guard))
    }

    /// The locked shard's slot for `key`, after taking back the recycled slots whose grace
    /// period is over and doing the write's share of a running migration.
    #[inline(always)]
    fn locked<'m, 'g, G: Retire, Q>(
        shard: &'m Shard<K, V>,
        mut writer: ShardLock<'m, 'g, K, V, G>,
        hasher: &'m S,
        hash: u64,
        key: &Q,
    ) -> Locked<'m, 'g, K, V, S, G>
    where
        Q: Equivalent<K> + ?Sized,
    {
        // Relaxed: a hint; `reuse_recycled` takes the batches with Acquire.
        if !shard.recycled.load(Ordering::Relaxed).is_null() {
            writer.reuse_recycled(&shard.recycled);
        }
        if Self::migrating(shard, &writer) {
            Self::migrate_for_write(shard, &mut writer, hasher, hash, key);
        }
        // Safety: `newest` is owned by the shard and we hold its lock.
        let slot = unsafe { &*writer.newest }.find_for_write(hash, key, writer.reuse());
        Locked {
            shard,
            hasher,
            writer,
            hash,
            slot,
        }
    }

    /// A write's share of a running migration: a chunk, and the slot of the key it writes.
    /// (Out of line, so that `lock` stays small enough to inline into every write.)
    #[inline(never)]
    fn migrate_for_write<Q>(
        shard: &Shard<K, V>,
        writer: &mut Writer<K, V>,
        hasher: &S,
        hash: u64,
        key: &Q,
    ) where
        Q: Equivalent<K> + ?Sized,
    {
        Self::migrate_chunk(shard, writer, hasher);
        // The chunk may have been the last one. (The loom models' teeth: skipping this lets
        // the write land beside a stale copy of the key in the old table.)
        if Self::migrating(shard, writer) && !cfg!(lanemap_broken_migrate_key) {
            Self::migrate_key(shard, writer, hash, key);
        }
    }

    fn migrating(shard: &Shard<K, V>, writer: &Writer<K, V>) -> bool {
        // Relaxed: only the lock holder stores `current`.
        shard.current.load(Ordering::Relaxed) != writer.newest
    }

    /// Starts migrating the shard into a new table of `capacity` slots.
    fn start_migration(
        shard: &Shard<K, V>,
        writer: &mut Writer<K, V>,
        hasher: &S,
        capacity: usize,
    ) -> Result<(), TryReserveError> {
        if Self::migrating(shard, writer) {
            Self::finish_migration(shard, writer, hasher);
        }
        let next = Box::into_raw(Table::try_new(capacity, HugePages::WhenFilled)?);
        // Safety: `newest` is owned by the shard and we hold its lock.
        let newest = unsafe { &*writer.newest };
        // Release: readers that follow `next` (Acquire) see the new table's initialised arrays.
        newest.next.store(next, Ordering::Release);
        writer.new_table(next);
        // Safety: just allocated, owned by the shard, whose lock we hold.
        shard.write_hint.aim(unsafe { &*next });
        writer.migrating = true;
        Ok(())
    }

    /// Moves up to [`MIGRATE_CHUNK`] slots; when none are left, makes the new table current.
    fn migrate_chunk(shard: &Shard<K, V>, writer: &mut Writer<K, V>, hasher: &S) {
        Self::migrate_slots(shard, writer, hasher, MIGRATE_CHUNK);
    }

    fn finish_migration(shard: &Shard<K, V>, writer: &mut Writer<K, V>, hasher: &S) {
        Self::migrate_slots(shard, writer, hasher, usize::MAX);
    }

    fn migrate_slots(shard: &Shard<K, V>, writer: &mut Writer<K, V>, hasher: &S, count: usize) {
        // Relaxed: only the lock holder stores `current`.
        let old = shard.current.load(Ordering::Relaxed);
        // Safety: the tables are owned by the shard and we hold its lock.
        let old_table = unsafe { &*old };
        // Safety: as above.
        let new_table = unsafe { &*writer.newest };
        let end = writer.cursor.saturating_add(count).min(old_table.end());
        let hash_of = |key: &K| hasher.hash_one(key);
        // A group at a time (or the part of one that the chunk covers).
        let group_end = |position| Table::<K, V>::group_end(position).min(end);
        let mut position = writer.cursor;
        // This group's moves and the next one's, alternating (see `Table::moves`).
        let mut buffers = [Moves::NONE, Moves::NONE];
        old_table.moves(
            &mut buffers[0],
            position,
            group_end(position),
            hash_of,
            new_table,
        );
        let mut this = 0;
        while position < end {
            let next_position = group_end(position);
            let [first, second] = &mut buffers;
            let (moves, next) = if this == 0 {
                (&*first, second)
            } else {
                (&*second, first)
            };
            // The next group's moves, taken now (before this group's copies, as `moves` asks),
            // so that their targets load while this group moves.
            let next_end = group_end(next_position);
            // The group after that one (at the last group: the next step's first, whose keys
            // then load while other writes go on).
            old_table.prefetch_entries_at(next_end);
            old_table.moves(next, next_position, next_end, hash_of, new_table);
            // Safety: both tables are the locked shard's, and `new_table` is the old one's next;
            // `moves` was taken under the lock, and nothing has written to the group since.
            let moved = unsafe { old_table.move_into(moves, new_table) };
            Self::moved(writer, moved);
            position = next_position;
            this ^= 1;
        }
        writer.cursor = end;
        if end == old_table.end() {
            // Release: readers that start from the new table (Acquire) see every node moved
            // into it.
            shard.current.store(writer.newest, Ordering::Release);
            // Safety: `newest` is owned by the shard and we hold its lock.
            unsafe { &*writer.newest }.advise_huge_pages();
            writer.cursor = 0;
            writer.migrating = false;
            // `old` is no longer `current`, so guards created from now on cannot reach it (it
            // owns no entry: every slot is MOVED or DELETED).
            writer.send_later(Outgoing::Table(old));
            // The entries taken out during the migration are now out of every table that
            // guards created from now on can reach.
            for dead in std::mem::take(&mut writer.deferred) {
                writer.retire(dead);
            }
        }
    }

    /// Moves `key`'s entry to the new table ahead of the cursor, so the write can go there.
    fn migrate_key<Q>(shard: &Shard<K, V>, writer: &mut Writer<K, V>, hash: u64, key: &Q)
    where
        Q: Equivalent<K> + ?Sized,
    {
        // Relaxed: only the lock holder stores `current`.
        let old = shard.current.load(Ordering::Relaxed);
        // Safety: the tables are owned by the shard and we hold its lock.
        let old_table = unsafe { &*old };
        // Safety: as above.
        let new_table = unsafe { &*writer.newest };
        if let Some(Slot::Occupied { index }) =
            old_table.find_for_write(hash, key, Reuse::EmptyOnly)
        {
            // The key's own hash is the entry's: no need to hash it again.
            let moves = old_table.moves_of(index, hash);
            // Safety: as in `migrate_slots`.
            let moved = unsafe { old_table.move_into(&moves, new_table) };
            Self::moved(writer, moved);
        }
    }

    /// Counts the slots a move filled in the new table; panics if it ran out of room (which
    /// its sizing rules out).
    #[inline]
    fn moved(writer: &mut Writer<K, V>, moved: Result<usize, usize>) {
        match moved {
            Ok(count) => writer.used += count,
            Err(count) => {
                writer.used += count;
                Self::out_of_room();
            }
        }
    }

    #[cold]
    fn out_of_room() -> ! {
        panic!(
            "lanemap internal error: a migration target ran out of room; \
             it is sized for the old table's entries plus one chunk of writes"
        )
    }

    /// The capacity a migration target needs: the live entries with half as many again to
    /// spare, plus the writes that may arrive before the migration ends (one per chunk of the
    /// old table's `old_end` positions), at the load limit.
    ///
    /// The spare half bounds the cost of tombstones: a table migrates again only after as many
    /// inserts and changes of value as half its entries, so moving entries costs at most two
    /// moves per write, amortised.
    fn migration_capacity(writer: &Writer<K, V>, old_end: usize) -> Result<usize, TryReserveError> {
        let entries = writer.live + writer.live / 2 + old_end.div_ceil(MIGRATE_CHUNK) + 1;
        Table::<K, V>::capacity_for(entries)
    }

    /// Hands every shard's queued removed entries to reclamation now (see [`RETIRE_BATCH`]),
    /// finishing a running migration first: the entries removed during it wait for its end.
    pub(crate) fn hand_over_removed(&self, guard: &impl Guard) {
        for shard in self.shards.iter() {
            let mut writer = ShardLock::new(shard, guard);
            if Self::migrating(shard, &writer) {
                Self::finish_migration(shard, &mut writer, &self.hasher);
            }
            writer.hand_over();
        }
    }

    /// Removes every entry, one shard at a time.
    pub(crate) fn clear(&self, guard: &impl Guard) {
        for shard in self.shards.iter() {
            let mut writer = ShardLock::new(shard, guard);
            Self::reset(shard, &mut writer, &self.hasher);
            shard.len.store(0, Ordering::Relaxed);
        }
    }

    /// Replaces the shard's tables by one empty minimum-size table and retires the old one with
    /// its entries.
    fn reset(shard: &Shard<K, V>, writer: &mut Writer<K, V>, hasher: &S) {
        if Self::migrating(shard, writer) {
            Self::finish_migration(shard, writer, hasher);
        }
        // Allocating the minimum table only fails if the allocator is out of memory.
        let fresh = Box::into_raw(Table::try_new(MIN_CAPACITY, HugePages::Now).unwrap_or_else(
            |error| panic!("lanemap: HashMap could not allocate an empty table: {error}"),
        ));
        let old = writer.newest;
        // Release: readers that load the fresh table (Acquire) see it initialised.
        shard.current.store(fresh, Ordering::Release);
        writer.new_table(fresh);
        // Safety: just allocated, owned by the shard, whose lock we hold.
        shard.write_hint.aim(unsafe { &*fresh });
        writer.live = 0;
        // The shard holds nothing now: let what it removed go too.
        writer.hand_over();
        // The table is no longer reachable from `current`, and it has no `next` (no migration
        // runs); freeing it drops the entries it owns.
        writer.send_later(Outgoing::Table(old));
    }

    /// Keeps the entries for which `keep` returns true, one shard at a time.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool, guard: &impl Guard) {
        for shard in self.shards.iter() {
            let mut writer = ShardLock::new(shard, guard);
            // Store the count even if `keep` panics halfway.
            let writer = LenOnDrop {
                shard,
                writer: &mut writer,
            };
            if Self::migrating(shard, writer.writer) {
                Self::finish_migration(shard, writer.writer, &self.hasher);
            }
            // Safety: `newest` is owned by the shard and we hold its lock.
            let table = unsafe { &*writer.writer.newest };
            for index in table.positions() {
                if !table.holds_entry(index) {
                    continue;
                }
                // Safety: a FULL slot of the locked shard's newest table.
                let node = unsafe { table.node(index) };
                if !keep(&node.key, &node.value) {
                    Self::erase(shard, table, index, writer.writer);
                }
            }
            if writer.writer.live == 0 {
                Self::reset(shard, writer.writer, &self.hasher);
            }
        }
    }

    /// Removes the entry in the FULL slot `index` of the writer's newest table and retires its
    /// key and value, and the slot (and the key's origin, if it moved on from one).
    #[inline(always)]
    fn erase(shard: &Shard<K, V>, table: &Table<K, V>, index: usize, writer: &mut Writer<K, V>) {
        // Safety: a FULL slot of the newest table (no MOVED bits there), under the lock; it is
        // marked DELETED right after, so the table never drops the entry too.
        let node = unsafe { table.take(index) };
        table.unpublish(index);
        writer.live -= 1;
        let moved_on = table.is_moved_on(index);
        if moved_on {
            let origin = writer.origins.remove(&(index as u32));
            let origin = origin.expect("lanemap internal error: a moved-on key lost its origin");
            table.close_origin(origin as usize);
            // An origin never has its moved-on bit set: it holds the key where it started.
            writer.deleted(origin as usize, false, &shard.recycled);
        }
        writer.deleted(index, moved_on, &shard.recycled);
        writer.retire(Dead::Entry(node));
    }

    /// Makes room for `additional` more entries in every shard, spread evenly.
    pub(crate) fn try_reserve(
        &self,
        additional: usize,
        guard: &impl Guard,
    ) -> Result<(), TryReserveError> {
        let per_shard = additional.div_ceil(self.shards.len());
        for shard in self.shards.iter() {
            let mut writer = ShardLock::new(shard, guard);
            let wanted = writer
                .live
                .checked_add(per_shard)
                .ok_or(TryReserveError::CapacityOverflow)?;
            let capacity = Table::<K, V>::capacity_for(wanted)?;
            // Safety: `newest` is owned by the shard and we hold its lock.
            let max_used = unsafe { &*writer.newest }.max_used();
            // Room means unused slots: tombstones do not count.
            if writer.used.saturating_add(per_shard) > max_used {
                Self::start_migration(shard, &mut writer, &self.hasher, capacity)?;
                Self::finish_migration(shard, &mut writer, &self.hasher);
            }
        }
        Ok(())
    }

    /// Shrinks every shard's table to fit its entries, finishing running migrations.
    pub(crate) fn shrink_to_fit(&self, guard: &impl Guard) {
        for shard in self.shards.iter() {
            let mut writer = ShardLock::new(shard, guard);
            if Self::migrating(shard, &writer) {
                Self::finish_migration(shard, &mut writer, &self.hasher);
            }
            if writer.live == 0 {
                Self::reset(shard, &mut writer, &self.hasher);
                continue;
            }
            let Ok(capacity) = Table::<K, V>::capacity_for(writer.live) else {
                continue;
            };
            // Safety: `newest` is owned by the shard and we hold its lock.
            if capacity < unsafe { &*writer.newest }.capacity()
                && Self::start_migration(shard, &mut writer, &self.hasher, capacity).is_ok()
            {
                Self::finish_migration(shard, &mut writer, &self.hasher);
            }
        }
    }

    #[inline]
    pub(crate) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }
}

/// Exclusive write access to one key of a locked shard; made by [`RawMap::lock`].
///
/// While it lives, no other writer touches the shard; readers go on, and see each change the
/// moment it is published. Dropping it records the shard's count and unlocks.
pub(crate) struct Locked<'m, 'g, K, V, S, G: Retire> {
    shard: &'m Shard<K, V>,
    /// The map's hasher, for the migrations a write may do.
    hasher: &'m S,
    writer: ShardLock<'m, 'g, K, V, G>,
    hash: u64,
    /// In `writer.newest`; `None` if the key is absent and no FREE or EMPTY slot is on its
    /// path, or after a removal.
    slot: Option<Slot>,
}

/// What a pinned write may keep: the entries it saw, for as long as its guard lives.
impl<'g, K: Hash, V, S: BuildHasher, G: Guard> Locked<'_, 'g, K, V, S, G> {
    /// [`node`](Self::node), valid while the guard lives.
    #[inline]
    pub(crate) fn node_pinned(&self) -> Option<&'g Node<K, V>> {
        // Safety: seen FULL under the lock.
        self.node().map(|node| unsafe { Self::pinned(node) })
    }

    /// [`insert`](Self::insert), the entry valid while the guard lives.
    #[inline(always)]
    pub(crate) fn insert_pinned(&mut self, key: K, value: V) -> &'g Node<K, V>
    where
        K: Eq,
    {
        // Safety: just published, under the lock.
        unsafe { Self::pinned(self.insert(key, value)) }
    }

    /// [`remove`](Self::remove), the entry valid while the guard lives.
    #[inline(always)]
    pub(crate) fn remove_pinned(&mut self) -> &'g Node<K, V> {
        // Safety: FULL until this removal, under the lock.
        unsafe { Self::pinned(self.remove()) }
    }

    /// `node`, valid for the guard's lifetime rather than the lock's.
    ///
    /// # Safety
    /// `node` is the entry of a slot of one of the shard's tables, seen FULL under the lock
    /// while the guard was active (as `Table::node_for_guard` requires): the guard keeps the
    /// table allocated, and the slot is reused only after the guard ends.
    #[inline(always)]
    unsafe fn pinned(node: &Node<K, V>) -> &'g Node<K, V> {
        // Safety: the caller's contract.
        unsafe { &*std::ptr::from_ref(node) }
    }
}

/// What every write may do, pinned or not: the entries it returns are valid while the lock is
/// held (borrowed with the [`Locked`]).
impl<'g, K: Hash, V, S: BuildHasher, G: Retire> Locked<'_, 'g, K, V, S, G> {
    /// The key's current entry.
    #[inline]
    pub(crate) fn node(&self) -> Option<&Node<K, V>> {
        let Some(Slot::Occupied { index }) = self.slot else {
            return None;
        };
        // Safety: a FULL slot of the newest table, whose lock we hold.
        Some(unsafe { self.table().node(index) })
    }

    fn table(&self) -> &Table<K, V> {
        // Safety: `newest` is owned by the shard and we hold its lock.
        unsafe { &*self.writer.newest }
    }

    /// Inserts an entry for the absent key (growing the table first if it is full).
    ///
    /// # Panics
    /// If the key is present (a bug in the caller), or the table cannot grow.
    #[inline(always)]
    pub(crate) fn insert(&mut self, key: K, value: V) -> &Node<K, V>
    where
        K: Eq,
    {
        let index = match self.slot {
            Some(Slot::Vacant { index }) if self.has_room(index) => index,
            Some(Slot::Occupied { .. }) => unreachable!("insert into an occupied slot"),
            _ => match self.make_room(&key) {
                Slot::Vacant { index } => index,
                Slot::Occupied { .. } => unreachable!("insert into an occupied slot"),
            },
        };
        let hash = self.hash;
        let table = self.table();
        let was_empty = table.publish(index, Node { key, value }, group::tag(hash));
        self.writer.filled(was_empty);
        self.writer.live += 1;
        self.slot = Some(Slot::Occupied { index });
        // Safety: just published in the newest table, under the lock.
        unsafe { self.table().node(index) }
    }

    #[inline]
    fn has_room(&self, index: usize) -> bool {
        self.writer.has_room(self.table(), index)
    }

    /// Inserts an entry for the key, or gives it a new value if present, returning what
    /// `on_replaced` makes of the replaced entry (out of line: the cases
    /// [`RawMap::insert_with`] does not publish at once).
    #[inline(never)]
    fn insert_or_replace<R>(
        mut self,
        key: K,
        value: V,
        on_replaced: impl FnOnce(&Node<K, V>) -> R,
    ) -> Option<R>
    where
        K: Eq,
    {
        if self.node().is_some() {
            let replaced = on_replaced(self.replace(value));
            // Unlock before the key the entry already has is dropped: its `Drop` is user code.
            drop(self);
            drop(key);
            Some(replaced)
        } else {
            self.insert(key, value);
            None
        }
    }

    /// Finds the key's slot again after making sure the newest table has an unused slot to
    /// spare: migrating into a fresh table (with room, and without tombstones) if it has none,
    /// and moving the key's entry there first.
    #[cold]
    fn make_room<Q>(&mut self, key: &Q) -> Slot
    where
        Q: Equivalent<K> + ?Sized,
    {
        let shard = self.shard;
        if self.writer.used >= self.writer.max_used as usize {
            let (old_capacity, old_end) = (self.table().capacity(), self.table().end());
            let started =
                RawMap::<K, V, S>::migration_capacity(&self.writer, old_end).and_then(|capacity| {
                    RawMap::<K, V, S>::start_migration(
                        shard,
                        &mut self.writer,
                        self.hasher,
                        capacity,
                    )
                });
            if let Err(error) = started {
                panic!(
                    "lanemap: HashMap could not grow a shard past {old_capacity} slots: {error}"
                );
            }
            RawMap::<K, V, S>::migrate_for_write(
                shard,
                &mut self.writer,
                self.hasher,
                self.hash,
                key,
            );
        }
        let slot = self
            .table()
            .find_for_write(self.hash, key, self.writer.reuse());
        slot.expect("lanemap internal error: a table under its load limit has an EMPTY slot")
    }

    /// Gives the key a new value, keeping its key (as `std`'s `insert` does), and returns the
    /// old entry.
    #[inline]
    pub(crate) fn replace(&mut self, value: V) -> &Node<K, V>
    where
        K: Eq,
    {
        let Some(Slot::Occupied { mut index }) = self.slot else {
            unreachable!("replace of an absent key")
        };
        let hash = self.hash;
        let mut new = self
            .table()
            .find_replacement(hash, index, self.writer.reuse());
        if !new.is_some_and(|new| self.has_room(new)) {
            // Safety: `newest` is owned by the shard and we hold its lock; should `make_room`
            // migrate, the table is retired only once the lock is released.
            let table = unsafe { &*self.writer.newest };
            // Safety: the key's FULL slot, under the lock.
            let key = &unsafe { table.node(index) }.key;
            let Slot::Occupied { index: moved } = self.make_room(key) else {
                unreachable!("a migration lost a key")
            };
            index = moved;
            new = self
                .table()
                .find_replacement(hash, index, self.writer.reuse());
        }
        let new = new.expect(
            "lanemap internal error: a table under its load limit has an EMPTY slot on every path",
        );
        let table = self.table();
        // Safety: the key's FULL slot in the newest table, under the lock; marked DELETED or
        // FORWARDED just below, so the table never drops the old entry too.
        let old = unsafe { table.take(index) };
        let Node {
            key,
            value: old_value,
        } = old;
        let replaced = table.publish_replacing(new, Node { key, value }, group::tag(hash), index);
        let writer = &mut *self.writer;
        writer.filled(replaced.was_empty);
        if replaced.moved_on {
            let origin = if replaced.old_moved_on {
                let origin = writer.origins.remove(&(index as u32));
                origin.expect("lanemap internal error: a moved-on key lost its origin")
            } else {
                index as u32
            };
            writer.origins.insert(new as u32, origin);
        }
        if !replaced.forwarded {
            writer.deleted(index, replaced.old_moved_on, &self.shard.recycled);
        }
        self.slot = Some(Slot::Occupied { index: new });
        self.writer.retire(Dead::Value(old_value));
        // Safety: the old slot was FULL, and under the lock its bytes stay unchanged: it is
        // reused, and its value dropped, only after a grace period that starts once the lock
        // is released. Its key lives on in the new entry.
        unsafe { self.table().node(index) }
    }

    /// Removes the key, returning its entry.
    #[inline(always)]
    pub(crate) fn remove(&mut self) -> &Node<K, V> {
        let Some(Slot::Occupied { index }) = self.slot else {
            unreachable!("remove of an absent key")
        };
        // Safety: `newest` is owned by the shard and we hold its lock.
        let table = unsafe { &*self.writer.newest };
        RawMap::<K, V, S>::erase(self.shard, table, index, &mut self.writer);
        self.slot = None;
        // Safety: as in `replace`: the slot was FULL, and the lock is held. (Should `give_back`
        // replace the table, the old one is retired only once the lock is released.)
        let removed = unsafe { table.node(index) };
        if self.writer.live < self.writer.low_water as usize || self.writer.live == 0 {
            self.give_back(table);
        }
        removed
    }

    /// After a removal left the shard empty or mostly so: gives memory back (out of line: most
    /// removals leave more than a sixteenth of the table's slots live).
    #[cold]
    #[inline(never)]
    fn give_back(&mut self, table: &Table<K, V>) {
        if self.writer.live == 0 {
            // The shard is empty: give its memory back at once, unless it holds no more than
            // an empty shard starts with and has room left (a shard going from one entry to
            // none and back would otherwise pay for a new table each time).
            if table.capacity() > MIN_CAPACITY
                || self.writer.used >= self.writer.max_used as usize
                || RawMap::<K, V, S>::migrating(self.shard, &self.writer)
            {
                RawMap::<K, V, S>::reset(self.shard, &mut self.writer, self.hasher);
            }
        } else if table.capacity() > MIN_CAPACITY
            && !RawMap::<K, V, S>::migrating(self.shard, &self.writer)
        {
            // Mostly empty: migrate into a smaller table, chunk by chunk like growth.
            if let Ok(capacity) = RawMap::<K, V, S>::migration_capacity(&self.writer, table.end())
                && capacity < table.capacity()
            {
                // Failing to allocate a smaller table just means not shrinking now.
                let _ = RawMap::<K, V, S>::start_migration(
                    self.shard,
                    &mut self.writer,
                    self.hasher,
                    capacity,
                );
            }
        }
    }
}

impl<K, V, S, G: Retire> Drop for Locked<'_, '_, K, V, S, G> {
    fn drop(&mut self) {
        // Relaxed: a statistic; the unlock right after (dropping `writer`) orders it for the
        // next writer.
        self.shard.len.store(self.writer.live, Ordering::Relaxed);
    }
}

/// A shard's writer lock, held. Dropping it unlocks, then hands what the writer unlinked
/// meanwhile (its `outbox`) to reclamation.
///
/// Handing over runs, now and then, seize's process-wide barrier (a `membarrier` system call,
/// which interrupts every core running the process) and reclaimers. Under the lock, the
/// shard's other writers waited for that: they spun, yielded and parked (at 2 threads, an
/// exchange run made 144 futex calls, against 21 with the hand-over after the unlock, and 15
/// for dashmap).
struct ShardLock<'m, 'g, K, V, G: Retire> {
    writer: ManuallyDrop<WriterGuard<'m, Writer<K, V>>>,
    guard: &'g G,
}

impl<'m, 'g, K, V, G: Retire> ShardLock<'m, 'g, K, V, G> {
    #[inline(always)]
    fn new(shard: &'m Shard<K, V>, guard: &'g G) -> Self {
        Self {
            writer: ManuallyDrop::new(shard.writer.lock()),
            guard,
        }
    }

    /// Unlocks, then hands the outbox to reclamation (out of line: one write in many has
    /// something to send). Called only from `drop`.
    #[cold]
    #[inline(never)]
    fn unlock_and_send(&mut self) {
        self.writer.outgoing = false;
        let outbox = std::mem::take(&mut self.writer.outbox);
        // Safety: called only from `drop`, which does not use `self.writer` again.
        unsafe { ManuallyDrop::drop(&mut self.writer) };
        for object in outbox {
            // Safety: queued by `Writer::send_later` once unlinked from every table that guards
            // created from then on could reach.
            unsafe { object.retire(self.guard) };
        }
    }
}

impl<K, V, G: Retire> std::ops::Deref for ShardLock<'_, '_, K, V, G> {
    type Target = Writer<K, V>;

    #[inline(always)]
    fn deref(&self) -> &Writer<K, V> {
        &self.writer
    }
}

impl<K, V, G: Retire> std::ops::DerefMut for ShardLock<'_, '_, K, V, G> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Writer<K, V> {
        &mut self.writer
    }
}

impl<K, V, G: Retire> Drop for ShardLock<'_, '_, K, V, G> {
    #[inline(always)]
    fn drop(&mut self) {
        if self.writer.outgoing {
            self.unlock_and_send();
        } else {
            // Safety: dropped once, here; `self.writer` is not used again.
            unsafe { ManuallyDrop::drop(&mut self.writer) };
        }
    }
}

/// Stores the shard's count when dropped, even when unwinding out of a user callback.
struct LenOnDrop<'a, 'g, 'w, K, V, G: Retire> {
    shard: &'a Shard<K, V>,
    writer: &'w mut ShardLock<'a, 'g, K, V, G>,
}

impl<K, V, G: Retire> Drop for LenOnDrop<'_, '_, '_, K, V, G> {
    fn drop(&mut self) {
        // Relaxed: as in `Locked::drop`.
        self.shard.len.store(self.writer.live, Ordering::Relaxed);
    }
}

impl<K, V, S> Drop for RawMap<K, V, S> {
    fn drop(&mut self) {
        // First let reclamation run every retired batch and table.
        // Safety: `&mut self`: no guard of this map's collector is alive on any thread, and
        // the map's reclaimers do not enter guards.
        unsafe { self.collector.reclaim_all() };
        for shard in self.shards.iter_mut() {
            // Relaxed: `&mut self` already excludes every other thread.
            let current = shard.current.load(Ordering::Relaxed);
            let writer = shard.writer.get_mut();
            if current != writer.newest {
                // Safety: `&mut self`: no reader or writer is left; a Box from `Table::try_new`.
                // It drops the entries not yet moved; the moved ones go with the newest table.
                drop(unsafe { Box::from_raw(current) });
            }
            // Safety: as above.
            drop(unsafe { Box::from_raw(writer.newest) });
            drop_entries(std::mem::take(&mut writer.retired));
            drop_entries(std::mem::take(&mut writer.deferred));
            // Empty: every unlock sends it (see `ShardLock`).
            debug_assert!(writer.outbox.is_empty());
            // The recycled batches that reclamation returned: nothing left to reuse them for.
            // Relaxed: `&mut self` already excludes every other thread.
            let mut batch = shard.recycled.load(Ordering::Relaxed);
            while !batch.is_null() {
                // Safety: pushed by `return_recycled` from `Box::into_raw`; `&mut self`.
                let recycled = unsafe { Box::from_raw(batch) };
                batch = recycled.next;
            }
        }
    }
}

/// Drops removed entries and values one by one, containing a panic from `K`'s or `V`'s `Drop`:
/// reclamation runs at an unpredictable point on whichever thread ends the last guard, where a
/// panic would tear through unrelated code.
fn drop_entries<K, V>(entries: Vec<Dead<K, V>>) {
    for dead in entries {
        let _ = catch_unwind(AssertUnwindSafe(move || drop(dead)));
    }
}

/// Reclaimer for a batch of removed or replaced entries (see [`Writer::hand_over`]).
///
/// # Safety
/// `ptr` came from `Box::into_raw`, and no guard can reach the slots its entries came from.
unsafe fn reclaim_batch<K, V>(ptr: *mut Vec<Dead<K, V>>, _: &Collector) {
    // Safety: the caller's contract; the collector calls this once no guard can reach them.
    drop_entries(*unsafe { Box::from_raw(ptr) });
}

/// Reclaimer for a batch of DELETED slots (see [`Writer::deleted`]): their grace period is over,
/// so it pushes them onto their shard's stack, for the writer to reuse.
///
/// # Safety
/// `ptr` came from `Box::into_raw`, and its `home` stack is alive.
unsafe fn return_recycled(ptr: *mut Recycled, _: &Collector) {
    // Safety: the caller's contract: a live batch.
    let home = unsafe { (*ptr).home };
    // Safety: the caller's contract: its stack is alive.
    let home = unsafe { &*home };
    // Relaxed: the CAS below publishes the batch.
    let mut head = home.load(Ordering::Relaxed);
    loop {
        // Safety: the batch is ours until the CAS succeeds.
        unsafe { (*ptr).next = head };
        // Release: the writer's Acquire swap sees the batch's contents, and everything that
        // happened before this reclaimer ran (the end of the grace period).
        match home.compare_exchange_weak(head, ptr, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(current) => head = current,
        }
    }
}

/// Reclaimer for a table: an outgrown one (it owns no entries: all moved), or one emptied by
/// `clear` or a removal (it drops the entries it holds).
///
/// # Safety
/// `ptr` came from `Box::into_raw` and no thread can reach it any more.
unsafe fn reclaim_table<K, V>(ptr: *mut Table<K, V>, _: &Collector) {
    // Safety: the caller's contract.
    drop(unsafe { Box::from_raw(ptr) });
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::RawMap;

    /// The fields every write reads or changes lie on one cache line (see `Shard`).
    #[test]
    fn hot_shard_fields_share_a_cache_line() {
        let map: RawMap<u64, u64, ()> = RawMap::new(1, 0, ());
        let shard = &map.shards[0];
        let writer = shard.writer.lock();
        let addresses = [
            &raw const shard.len as usize,
            &raw const shard.recycled as usize,
            // The lock word (first in `WriterLock`).
            &raw const shard.writer as usize,
            &raw const writer.newest as usize,
            &raw const writer.live as usize,
            &raw const writer.used as usize,
            &raw const writer.free as usize,
            &raw const writer.migrating as usize,
            &raw const writer.outgoing as usize,
            &raw const writer.max_used as usize,
            &raw const writer.low_water as usize,
        ];
        let line = addresses[0] / 64;
        for (index, address) in addresses.iter().enumerate() {
            assert_eq!(address / 64, line, "field {index} at {:#x}", address % 512);
        }
    }
}
