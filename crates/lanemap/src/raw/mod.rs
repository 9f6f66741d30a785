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
//! **Writes** lock their shard, then publish immutable nodes with `Release` stores. Changing a
//! value publishes a new node and retires the old one, so a reader holding the old node keeps a
//! consistent key and value until its guard ends.
//!
//! **Resizing** is incremental. When a table fills (or mostly empties), the writer allocates the
//! next table, links it from the old one's `next`, and from then on every write to the shard
//! first moves [`MIGRATE_CHUNK`] slots of the old table (and the slot of the key it is about to
//! write). A moved slot keeps its node pointer with the MOVED bit set, so readers know to look in
//! `next`. When every slot has moved, `current` switches to the new table and the old one is
//! retired. No single operation copies more than [`MIGRATE_CHUNK`] slots, except `clear`,
//! `retain`, `shrink_to_fit` and `try_reserve`, which finish a running migration first.

pub(crate) mod group;
pub(crate) mod node;
pub(crate) mod table;

mod iter;
mod slab;

pub(crate) use iter::Cursor;

use crate::error::TryReserveError;
use crate::reclaim::{Collector, Guard, collector};
use crate::sync::{AtomicPtr, AtomicUsize, Mutex, MutexGuard, Ordering};
use crossbeam_utils::CachePadded;
use equivalent::Equivalent;
use group::EMPTY;
use node::{Node, is_moved, moved, untagged};
use slab::{Pool, Slab};
use std::alloc::Layout;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use table::{Lookup, MIN_CAPACITY, Slot, Table};

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

/// How far ahead of its moves a migration prefetches nodes, and their target groups (in slot
/// positions; see [`RawMap::prefetch_move`]).
const NODE_AHEAD: usize = 16;
const TARGET_AHEAD: usize = 8;

/// Nodes a shard's writer unlinks before it hands them to reclamation, as one object.
///
/// Retiring each node with seize cost about 90 instructions per remove or replace (a
/// thread-local lookup, a batch push, and a share of a process-wide barrier per batch); a
/// batch of nodes queued under the shard lock costs a few. A removed node thus waits for at
/// most `RETIRE_BATCH - 1` later removals in its shard (or for `flush_removed`, `clear`, the
/// shard emptying, or the map dropping) before its grace period starts.
#[cfg(not(loom))]
const RETIRE_BATCH: usize = 32;
/// Small under loom, so that the models cover both a queued and a handed-over node.
#[cfg(loom)]
const RETIRE_BATCH: usize = 2;

pub(crate) struct RawMap<K, V, S> {
    /// Invariant: a power of two long, `1 << (63 - shift)`.
    shards: Box<[CachePadded<Shard<K, V>>]>,
    shift: u32,
    pub(crate) hasher: S,
    collector: Collector,
    /// The map owns `K`s and `V`s (drop check), and its auto traits are replaced by the explicit
    /// impls below: the node pointers inside would otherwise make it `Send` and `Sync` for any
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

struct Shard<K, V> {
    /// The table readers start from. Invariant: non-null; retired only after being replaced.
    ///
    /// On a cache line of its own: every lookup reads it, while every write changes the lock
    /// and `len`; sharing their line, it would be evicted from other cores' caches by each
    /// write to the shard (a miss per lookup after a write, 8 shards on 2 cores).
    current: CachePadded<AtomicPtr<Table<K, V>>>,
    /// Entry count as of the last write.
    len: AtomicUsize,
    writer: Mutex<Writer<K, V>>,
}

/// What only the shard's writer touches.
struct Writer<K, V> {
    /// The table writes go to: `current`, or during a migration `current.next`.
    /// Invariant: non-null, owned by the shard.
    newest: *mut Table<K, V>,
    /// Live entries in the shard.
    live: usize,
    /// Non-EMPTY slots (entries and tombstones) in `newest`.
    used: usize,
    /// During a migration: the next slot of `current` to move.
    cursor: usize,
    /// Whether a migration runs (`current != newest`).
    migrating: bool,
    /// Nodes unlinked from every table, not yet handed to reclamation (see [`RETIRE_BATCH`]).
    /// Invariant: each came from `Node::allocate`, is reachable only by guards that were active
    /// when it was unlinked, and appears here or in `deferred` once.
    retired: Vec<*mut Node<K, V>>,
    /// Nodes unlinked from `newest` while a migration runs. The old table, still `current`,
    /// may keep such a node's MOVED mark, which readers follow into the node (to compare its
    /// key) before they look at the mark; so these wait until the old table is no longer
    /// `current`, and join `retired` then.
    deferred: Vec<*mut Node<K, V>>,
    /// Where the shard's nodes live.
    slab: Slab,
}

impl<K, V> Writer<K, V> {
    fn new(table: *mut Table<K, V>) -> Self {
        Self {
            newest: table,
            live: 0,
            used: 0,
            cursor: 0,
            migrating: false,
            retired: Vec::new(),
            deferred: Vec::new(),
            slab: Slab::new(Layout::new::<Node<K, V>>()),
        }
    }

    /// Queues `node`, just unlinked from the shard's newest table, for reclamation: at once,
    /// or, while a migration runs, once it ends (see `deferred`).
    ///
    /// # Safety
    /// `node` came from `Node::allocate`, no table links it any more except, as a MOVED mark,
    /// the old table of a running migration, and it is not queued yet.
    #[inline]
    unsafe fn retire(&mut self, node: *mut Node<K, V>, guard: &impl Guard) {
        if self.migrating {
            self.deferred.push(node);
            return;
        }
        if self.retired.capacity() == 0 {
            self.retired.reserve_exact(RETIRE_BATCH);
        }
        self.retired.push(node);
        if self.retired.len() >= RETIRE_BATCH {
            self.hand_over(guard);
        }
    }

    /// Hands the queued nodes to reclamation as one batch: freed once every guard active now
    /// has ended (every guard that could have loaded one of them was active when it was
    /// unlinked, which was no later than now).
    fn hand_over(&mut self, guard: &impl Guard) {
        if self.retired.is_empty() {
            return;
        }
        let batch = Box::into_raw(Box::new(Retired {
            nodes: std::mem::take(&mut self.retired),
            pool: self.slab.pool(),
        }));
        // Safety: the batch is ours alone; its nodes satisfy `reclaim_batch`'s contract by the
        // invariant on `retired` (all from this shard's current slab, whose pool lives while
        // they are out), and guards created from now on cannot reach them.
        unsafe { guard.defer_retire(batch, reclaim_batch::<K, V>) };
    }
}

// Safety: `newest`, `retired` and `deferred` point into tables and nodes the shard owns, and
// `slab` to its memory; they are only used by the thread holding the writer lock, which is
// what moving `Writer` between threads amounts to (the nodes' `K` and `V` move with them).
unsafe impl<K: Send, V: Send> Send for Writer<K, V> {}

impl<K, V, S> RawMap<K, V, S> {
    pub(crate) fn new(shards: usize, capacity: usize, hasher: S) -> Self {
        debug_assert!(shards.is_power_of_two());
        let per_shard = Table::<K, V>::capacity_for(capacity.div_ceil(shards))
            .unwrap_or_else(|error| panic!("lanemap: HashMap::with_capacity({capacity}): {error}"));
        let shards: Box<[_]> = (0..shards)
            .map(|_| {
                let table = Table::try_new(per_shard).unwrap_or_else(|error| {
                    panic!("lanemap: HashMap::with_capacity({capacity}): {error}")
                });
                let table = Box::into_raw(table);
                CachePadded::new(Shard {
                    current: CachePadded::new(AtomicPtr::new(table)),
                    len: AtomicUsize::new(0),
                    writer: Mutex::new(Writer::new(table)),
                })
            })
            .collect();
        let shift = 63 - shards.len().trailing_zeros();
        Self {
            shards,
            shift,
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

    /// Entries the shards' newest tables hold before they grow.
    pub(crate) fn capacity(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let writer = shard.writer.lock();
                // Safety: `newest` is owned by the shard and we hold its lock.
                unsafe { &*writer.newest }.max_used()
            })
            .sum()
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard<K, V> {
        // The bits just below the 7-bit tags; tables index with the low bits.
        let index = ((hash << 7) >> 1 >> self.shift) as usize;
        debug_assert!(index < self.shards.len());
        // Safety: `index < 2^(64 - 1 - shift) = shards.len()` by the invariant on `shift`.
        unsafe { self.shards.get_unchecked(index) }
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
                // Moved: the node's copy is in `next`, published before the MOVED mark we saw.
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

    /// Locks the shard of `hash` for a write to `key`, migrating a chunk first if one is due.
    #[inline]
    pub(crate) fn lock<'m, 'g, G: Guard, Q>(
        &'m self,
        hash: u64,
        key: &Q,
        guard: &'g G,
    ) -> Locked<'m, 'g, K, V, G>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let shard = self.shard(hash);
        let mut writer = shard.writer.lock();
        if Self::migrating(shard, &writer) {
            Self::migrate_for_write(shard, &mut writer, hash, key, guard);
        }
        // Safety: `newest` is owned by the shard and we hold its lock.
        let slot = unsafe { &*writer.newest }.find_for_write(hash, key);
        Locked {
            shard,
            writer,
            guard,
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
        hash: u64,
        key: &Q,
        guard: &impl Guard,
    ) where
        Q: Equivalent<K> + ?Sized,
    {
        Self::migrate_chunk(shard, writer, guard);
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
        capacity: usize,
        guard: &impl Guard,
    ) -> Result<(), TryReserveError> {
        if Self::migrating(shard, writer) {
            Self::finish_migration(shard, writer, guard);
        }
        let next = Box::into_raw(Table::try_new(capacity)?);
        // Safety: `newest` is owned by the shard and we hold its lock.
        let newest = unsafe { &*writer.newest };
        // Release: readers that follow `next` (Acquire) see the new table's initialised arrays.
        newest.next.store(next, Ordering::Release);
        writer.newest = next;
        writer.used = 0;
        writer.cursor = 0;
        writer.migrating = true;
        Ok(())
    }

    /// Moves up to [`MIGRATE_CHUNK`] slots; when none are left, makes the new table current.
    fn migrate_chunk(shard: &Shard<K, V>, writer: &mut Writer<K, V>, guard: &impl Guard) {
        Self::migrate_slots(shard, writer, MIGRATE_CHUNK, guard);
    }

    fn finish_migration(shard: &Shard<K, V>, writer: &mut Writer<K, V>, guard: &impl Guard) {
        Self::migrate_slots(shard, writer, usize::MAX, guard);
    }

    fn migrate_slots(
        shard: &Shard<K, V>,
        writer: &mut Writer<K, V>,
        count: usize,
        guard: &impl Guard,
    ) {
        // Relaxed: only the lock holder stores `current`.
        let old = shard.current.load(Ordering::Relaxed);
        // Safety: the tables are owned by the shard and we hold its lock.
        let old_table = unsafe { &*old };
        // Safety: as above.
        let new_table = unsafe { &*writer.newest };
        let end = writer.cursor.saturating_add(count).min(old_table.end());
        for position in writer.cursor..end {
            if Table::<K, V>::is_slot(position) {
                Self::prefetch_move(old_table, position + NODE_AHEAD, new_table);
                Self::move_slot(old_table, position, new_table, writer);
            }
        }
        writer.cursor = end;
        if end == old_table.end() {
            // Release: readers that start from the new table (Acquire) see every node moved
            // into it.
            shard.current.store(writer.newest, Ordering::Release);
            writer.cursor = 0;
            writer.migrating = false;
            // Safety: `old` is no longer `current`, so guards created from now on cannot reach
            // it; it was allocated by `Table::try_new` as a Box, which `reclaim_table` frees
            // without touching the nodes (they live on in the new table).
            unsafe { guard.defer_retire(old, reclaim_table::<K, V>) };
            // The nodes unlinked during the migration are now out of every table that guards
            // created from now on can reach.
            for node in std::mem::take(&mut writer.deferred) {
                // Safety: each was unlinked from `newest`, and the only other table that could
                // link it (`old`) is unreachable for new guards; queued once (moved out of
                // `deferred`).
                unsafe { writer.retire(node, guard) };
            }
        }
    }

    /// Moves `key`'s node to the new table ahead of the cursor, so the write can go there.
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
        if let Some(Slot::Occupied { index, .. }) = old_table.find_for_write(hash, key) {
            Self::move_slot(old_table, index, new_table, writer);
        }
    }

    /// Starts loading what the move of the slot at `position` will need: its node now, and the
    /// node's target group in `new` once the node has arrived (from the prefetch issued
    /// [`NODE_AHEAD`] - [`TARGET_AHEAD`] positions earlier). A migration reads every node for
    /// its hash, in table order, which is random in memory: without this, each move waited for
    /// a DRAM miss, about 40% of a rapid-grow run's time.
    #[inline]
    fn prefetch_move(old: &Table<K, V>, position: usize, new: &Table<K, V>) {
        if position < old.end() && Table::<K, V>::is_slot(position) {
            let ptr = old.slot(position);
            if !ptr.is_null() {
                table::prefetch(untagged(ptr));
            }
        }
        let target = position - (NODE_AHEAD - TARGET_AHEAD);
        if target < old.end() && Table::<K, V>::is_slot(target) {
            let ptr = old.slot(target);
            if !ptr.is_null() && !is_moved(ptr) {
                // Safety: a live node in a table of the locked shard; it cannot be retired
                // meanwhile.
                new.prefetch_group(unsafe { &*ptr }.hash);
            }
        }
    }

    /// Copies slot `index` of `old` into `new` and marks it MOVED.
    fn move_slot(old: &Table<K, V>, index: usize, new: &Table<K, V>, writer: &mut Writer<K, V>) {
        let ptr = old.slot(index);
        if ptr.is_null() || is_moved(ptr) {
            return;
        }
        // Safety: a live node in a table of the locked shard; it cannot be retired meanwhile.
        let hash = unsafe { &*ptr }.hash;
        let target = new.find_free(hash).expect(
            "lanemap internal error: a migration target ran out of room; \
             it is sized for the old table's entries plus one chunk of writes",
        );
        if new.publish(target, ptr, group::tag(hash)) {
            writer.used += 1;
        }
        // After the copy is published: a reader that sees MOVED finds the node in `new`.
        #[cfg(not(lanemap_broken_publish))]
        old.set_slot(index, moved(ptr));
        // The loom models' teeth: a Relaxed MOVED mark, so a reader that sees it may not see the
        // node's copy in `new`.
        #[cfg(lanemap_broken_publish)]
        old.set_slot_relaxed(index, moved(ptr));
    }

    /// The capacity a migration target needs: the live entries, plus the inserts that may
    /// arrive before the migration ends (one per chunk of the old table's `old_end`
    /// positions), at the load limit.
    fn migration_capacity(writer: &Writer<K, V>, old_end: usize) -> Result<usize, TryReserveError> {
        let entries = writer.live + old_end.div_ceil(MIGRATE_CHUNK) + 1;
        Table::<K, V>::capacity_for(entries)
    }

    /// Hands every shard's queued removed nodes to reclamation now (see [`RETIRE_BATCH`]),
    /// finishing a running migration first: the nodes removed during it wait for its end.
    pub(crate) fn hand_over_removed(&self, guard: &impl Guard) {
        for shard in self.shards.iter() {
            let mut writer = shard.writer.lock();
            if Self::migrating(shard, &writer) {
                Self::finish_migration(shard, &mut writer, guard);
            }
            writer.hand_over(guard);
        }
    }

    /// Removes every entry, one shard at a time.
    pub(crate) fn clear(&self, guard: &impl Guard) {
        for shard in self.shards.iter() {
            let mut writer = shard.writer.lock();
            Self::reset(shard, &mut writer, guard);
            shard.len.store(0, Ordering::Relaxed);
        }
    }

    /// Replaces the shard's tables by one empty minimum-size table and retires the old ones
    /// with their nodes.
    fn reset(shard: &Shard<K, V>, writer: &mut Writer<K, V>, guard: &impl Guard) {
        if Self::migrating(shard, writer) {
            Self::finish_migration(shard, writer, guard);
        }
        // Allocating the minimum table only fails if the allocator is out of memory.
        let fresh = Box::into_raw(Table::try_new(MIN_CAPACITY).unwrap_or_else(|error| {
            panic!("lanemap: HashMap could not allocate an empty table: {error}")
        }));
        let old = writer.newest;
        // Release: readers that load the fresh table (Acquire) see it initialised.
        shard.current.store(fresh, Ordering::Release);
        writer.newest = fresh;
        writer.live = 0;
        writer.used = 0;
        writer.cursor = 0;
        // The shard holds nothing now: let what it removed go too.
        writer.hand_over(guard);
        let old = Box::into_raw(Box::new(RetiredTable {
            table: old,
            pool: writer.slab.pool(),
        }));
        // Safety: the table is no longer reachable from `current`, it has no `next` (no
        // migration runs), and its nodes are reachable only through it and come from the
        // shard's current slab; `reclaim_table_and_nodes` frees exactly those.
        unsafe { guard.defer_retire(old, reclaim_table_and_nodes::<K, V>) };
        // Every node of the shard is on its way back to the slab: start a fresh one, so that
        // the old chunks are freed once reclamation has returned the last of them (unless the
        // slab has only its first, small chunk: then keep it for the next inserts).
        if writer.slab.chunks() > 1 {
            writer.slab.abandon();
        }
    }

    /// Keeps the entries for which `keep` returns true, one shard at a time.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool, guard: &impl Guard) {
        for shard in self.shards.iter() {
            let mut writer = shard.writer.lock();
            // Store the count even if `keep` panics halfway.
            let writer = LenOnDrop {
                shard,
                writer: &mut writer,
            };
            if Self::migrating(shard, writer.writer) {
                Self::finish_migration(shard, writer.writer, guard);
            }
            // Safety: `newest` is owned by the shard and we hold its lock.
            let table = unsafe { &*writer.writer.newest };
            for index in table.positions() {
                let ptr = table.slot(index);
                if ptr.is_null() {
                    continue;
                }
                // Safety: a live node of the locked shard's newest table (no MOVED marks there).
                let node = unsafe { &*ptr };
                if !keep(&node.key, &node.value) {
                    Self::erase(table, index, writer.writer, guard);
                }
            }
            if writer.writer.live == 0 {
                Self::reset(shard, writer.writer, guard);
            }
        }
    }

    /// Removes the node in slot `index` of the writer's newest table and retires it.
    #[inline]
    fn erase(table: &Table<K, V>, index: usize, writer: &mut Writer<K, V>, guard: &impl Guard) {
        let ptr = table.slot(index);
        if table.unpublish(index) {
            writer.used -= 1;
        }
        writer.live -= 1;
        // Safety: the node is unlinked from the writer's newest table; the only other table
        // that can link it is a running migration's old one, as a MOVED mark, which `retire`
        // waits out. It came from `Node::allocate` and, being linked until now, was not queued.
        unsafe { writer.retire(ptr, guard) };
    }

    /// Makes room for `additional` more entries in every shard, spread evenly.
    pub(crate) fn try_reserve(
        &self,
        additional: usize,
        guard: &impl Guard,
    ) -> Result<(), TryReserveError> {
        let per_shard = additional.div_ceil(self.shards.len());
        for shard in self.shards.iter() {
            let mut writer = shard.writer.lock();
            let wanted = writer
                .live
                .checked_add(per_shard)
                .ok_or(TryReserveError::CapacityOverflow)?;
            let capacity = Table::<K, V>::capacity_for(wanted)?;
            // Safety: `newest` is owned by the shard and we hold its lock.
            if capacity > unsafe { &*writer.newest }.capacity() {
                Self::start_migration(shard, &mut writer, capacity, guard)?;
                Self::finish_migration(shard, &mut writer, guard);
            }
        }
        Ok(())
    }

    /// Shrinks every shard's table to fit its entries, finishing running migrations.
    pub(crate) fn shrink_to_fit(&self, guard: &impl Guard) {
        for shard in self.shards.iter() {
            let mut writer = shard.writer.lock();
            if Self::migrating(shard, &writer) {
                Self::finish_migration(shard, &mut writer, guard);
            }
            if writer.live == 0 {
                Self::reset(shard, &mut writer, guard);
                continue;
            }
            let Ok(capacity) = Table::<K, V>::capacity_for(writer.live) else {
                continue;
            };
            // Safety: `newest` is owned by the shard and we hold its lock.
            if capacity < unsafe { &*writer.newest }.capacity()
                && Self::start_migration(shard, &mut writer, capacity, guard).is_ok()
            {
                Self::finish_migration(shard, &mut writer, guard);
            }
        }
    }
}

impl<K: Hash, V, S: BuildHasher> RawMap<K, V, S> {
    #[inline]
    pub(crate) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }
}

/// Exclusive write access to one key of a locked shard; made by [`RawMap::lock`].
///
/// While it lives, no other writer touches the shard; readers go on, and see each change the
/// moment it is published. Dropping it records the shard's count and unlocks.
pub(crate) struct Locked<'m, 'g, K, V, G> {
    shard: &'m Shard<K, V>,
    writer: MutexGuard<'m, Writer<K, V>>,
    guard: &'g G,
    hash: u64,
    /// In `writer.newest`; `None` only if the key is absent and the table has no free slot.
    slot: Option<Slot<K, V>>,
}

impl<'g, K, V, G: Guard> Locked<'_, 'g, K, V, G> {
    /// The key's current node.
    #[inline]
    pub(crate) fn node(&self) -> Option<&'g Node<K, V>> {
        match self.slot {
            // Safety: a live node of the locked shard; if this writer retires it later, the
            // guard (alive for 'g) still keeps it allocated.
            Some(Slot::Occupied { node, .. }) => Some(unsafe { &*node }),
            _ => None,
        }
    }

    fn table(&self) -> &Table<K, V> {
        // Safety: `newest` is owned by the shard and we hold its lock.
        unsafe { &*self.writer.newest }
    }

    /// Inserts a node for the absent key (growing the table first if it is full).
    ///
    /// # Panics
    /// If the key is present (a bug in the caller), or the table cannot grow.
    #[inline]
    pub(crate) fn insert(&mut self, key: K, value: V) -> &'g Node<K, V>
    where
        K: Eq,
    {
        let index = match self.slot {
            Some(Slot::Vacant { index })
                if self.table().ctrl_byte(index) != EMPTY
                    || self.writer.used < self.table().max_used() =>
            {
                index
            }
            Some(Slot::Occupied { .. }) => unreachable!("insert into an occupied slot"),
            _ => self.grow(&key),
        };
        let hash = self.hash;
        let ptr = Node::allocate(Node { hash, key, value }, &mut self.writer.slab);
        let table = self.table();
        let was_empty = table.publish(index, ptr, group::tag(hash));
        self.writer.used += usize::from(was_empty);
        self.writer.live += 1;
        self.slot = Some(Slot::Occupied { index, node: ptr });
        // Safety: just published in the locked shard; see `node`.
        unsafe { &*ptr }
    }

    /// Starts a migration into a table with room for one more, and finds the key's free slot
    /// there.
    #[cold]
    fn grow(&mut self, key: &K) -> usize
    where
        K: Eq,
    {
        let shard = self.shard;
        let (old_capacity, old_end) = {
            // Safety: `newest` is owned by the shard and we hold its lock.
            let old = unsafe { &*self.writer.newest };
            (old.capacity(), old.end())
        };
        let capacity =
            RawMap::<K, V, ()>::migration_capacity(&self.writer, old_end).and_then(|capacity| {
                RawMap::<K, V, ()>::start_migration(shard, &mut self.writer, capacity, self.guard)
            });
        if let Err(error) = capacity {
            panic!("lanemap: HashMap could not grow a shard past {old_capacity} slots: {error}");
        }
        RawMap::<K, V, ()>::migrate_chunk(shard, &mut self.writer, self.guard);
        match self.table().find_for_write(self.hash, key) {
            Some(Slot::Vacant { index }) => index,
            _ => unreachable!("a fresh migration target has room and lacks the key"),
        }
    }

    /// Replaces the key's node with `node` (same key), returning the old node.
    #[inline]
    pub(crate) fn replace(&mut self, key: K, value: V) -> &'g Node<K, V> {
        let Some(Slot::Occupied { index, node: old }) = self.slot else {
            unreachable!("replace of an absent key")
        };
        let ptr = Node::allocate(
            Node {
                hash: self.hash,
                key,
                value,
            },
            &mut self.writer.slab,
        );
        self.table().set_slot(index, ptr);
        self.slot = Some(Slot::Occupied { index, node: ptr });
        // Safety: `old` is unlinked from the newest table (its slot now holds `ptr`); the only
        // other table that can link it is a running migration's old one, as a MOVED mark, which
        // `retire` waits out. From `Node::allocate`, and not queued before (it was linked).
        unsafe { self.writer.retire(old, self.guard) };
        // Safety: `guard` was active when `old` was unlinked, so whichever guard hands `old`'s
        // batch over, reclamation waits for `guard`, which lives for 'g.
        unsafe { &*old }
    }

    /// Removes the key, returning its node (valid while the guard lives).
    #[inline]
    pub(crate) fn remove(&mut self) -> &'g Node<K, V> {
        let Some(Slot::Occupied { index, node }) = self.slot else {
            unreachable!("remove of an absent key")
        };
        // Safety: `newest` is owned by the shard and we hold its lock.
        let table = unsafe { &*self.writer.newest };
        RawMap::<K, V, ()>::erase(table, index, &mut self.writer, self.guard);
        self.slot = Some(Slot::Vacant { index });
        if self.writer.live == 0 {
            // The shard is empty: give its memory back at once, unless it holds no more than
            // an empty shard starts with (a shard going from one entry to none and back
            // would otherwise pay for a new table and slab each time).
            if table.capacity() > MIN_CAPACITY
                || self.writer.slab.chunks() > 1
                || RawMap::<K, V, ()>::migrating(self.shard, &self.writer)
            {
                RawMap::<K, V, ()>::reset(self.shard, &mut self.writer, self.guard);
                self.slot = None;
            }
        } else if self.writer.live < table.capacity() / 16
            && table.capacity() > MIN_CAPACITY
            && !RawMap::<K, V, ()>::migrating(self.shard, &self.writer)
        {
            // Mostly empty: migrate into a smaller table, chunk by chunk like growth.
            if let Ok(capacity) = RawMap::<K, V, ()>::migration_capacity(&self.writer, table.end())
                && capacity < table.capacity()
            {
                // Failing to allocate a smaller table just means not shrinking now.
                let _ = RawMap::<K, V, ()>::start_migration(
                    self.shard,
                    &mut self.writer,
                    capacity,
                    self.guard,
                );
                self.slot = None;
            }
        }
        // Safety: queued in `erase` while `guard` was active, so it stays allocated for 'g (see
        // `replace`).
        unsafe { &*node }
    }
}

impl<K, V, G> Drop for Locked<'_, '_, K, V, G> {
    fn drop(&mut self) {
        // Relaxed: a statistic; the unlock right after orders it for the next writer.
        self.shard.len.store(self.writer.live, Ordering::Relaxed);
    }
}

/// Stores the shard's count when dropped, even when unwinding out of a user callback.
struct LenOnDrop<'a, 'w, K, V> {
    shard: &'a Shard<K, V>,
    writer: &'w mut MutexGuard<'a, Writer<K, V>>,
}

impl<K, V> Drop for LenOnDrop<'_, '_, K, V> {
    fn drop(&mut self) {
        // Relaxed: as in `Locked::drop`.
        self.shard.len.store(self.writer.live, Ordering::Relaxed);
    }
}

impl<K, V, S> Drop for RawMap<K, V, S> {
    fn drop(&mut self) {
        // First let reclamation run every retired batch, while the shards, and with them the
        // slabs the batches give their blocks back to, are still alive.
        // Safety: `&mut self`: no guard of this map's collector is alive on any thread, and
        // the map's reclaimers do not enter guards.
        unsafe { self.collector.reclaim_all() };
        for shard in self.shards.iter_mut() {
            // Relaxed: `&mut self` already excludes every other thread.
            let current = shard.current.load(Ordering::Relaxed);
            let newest = shard.writer.get_mut().newest;
            if current != newest {
                // Safety: `&mut self`: no reader or writer is left. The old table's unmoved
                // nodes are only in it; its moved ones are freed with the newest table.
                unsafe { free_table(current, |ptr| !is_moved(ptr), |_| {}) };
            }
            // Safety: as above; the newest table holds no MOVED marks.
            unsafe { free_table(newest, |_| true, |_| {}) };
            let writer = shard.writer.get_mut();
            for node in std::mem::take(&mut writer.retired)
                .into_iter()
                .chain(std::mem::take(&mut writer.deferred))
            {
                // Safety: queued nodes are unlinked from the tables freed above (a deferred
                // one's MOVED mark in `current` was skipped), from `Node::allocate`, queued
                // once, and no guard is left to reach them.
                unsafe { drop_node(node) };
            }
        }
        // The slabs' chunks are freed with the shards, after this.
    }
}

/// Frees a table and drops the nodes in it that `owns` accepts, calling `freed` with each
/// dropped node's block.
///
/// # Safety
/// No thread can reach `table` or those nodes any more; the table is a Box, the nodes come
/// from `Node::allocate`.
unsafe fn free_table<K, V>(
    table: *mut Table<K, V>,
    owns: impl Fn(*mut Node<K, V>) -> bool,
    mut freed: impl FnMut(NonNull<u8>),
) {
    // Safety: the caller guarantees exclusive ownership of a Box-allocated table.
    let table = unsafe { Box::from_raw(table) };
    for index in table.positions() {
        let ptr = table.slot(index);
        if !ptr.is_null() && owns(ptr) {
            let node = untagged(ptr);
            // Safety: the caller guarantees the accepted nodes are ours alone.
            unsafe { drop_node(node) };
            // Safety: non-null (checked above; untagging keeps it so).
            freed(unsafe { NonNull::new_unchecked(node) }.cast());
        }
    }
}

/// Drops a node's key and value in place, containing a panic from `K`'s or `V`'s `Drop`:
/// reclamation runs at an unpredictable point on whichever thread ends the last guard, where a
/// panic would tear through unrelated code. The block stays the caller's to give back.
///
/// # Safety
/// `ptr` came from `Node::allocate`, no thread can reach it any more, and it is not dropped
/// again.
unsafe fn drop_node<K, V>(ptr: *mut Node<K, V>) {
    // Safety: the caller's contract: a live node that no one else can reach. If `K`'s drop
    // panics, `V` is still dropped by the unwinding drop glue.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe { std::ptr::drop_in_place(ptr) }));
}

/// Blocks being linked for [`Pool::give_back`]: the first, the last, and how many.
struct Chain(Option<(NonNull<u8>, NonNull<u8>, usize)>);

impl Chain {
    /// Adds an unused block at the front.
    fn push(&mut self, block: NonNull<u8>) {
        let (first, last, count) = match self.0 {
            Some((first, last, count)) => {
                // Safety: an unused slab block, at least a pointer large and aligned.
                unsafe { block.cast::<*mut u8>().as_ptr().write(first.as_ptr()) };
                (block, last, count + 1)
            }
            None => (block, block, 1),
        };
        self.0 = Some((first, last, count));
    }

    /// Gives the blocks back to `pool`.
    ///
    /// # Safety
    /// As [`Pool::give_back`]: the blocks are unused blocks of `pool`, each given back once.
    unsafe fn give_back(self, pool: *const Pool) {
        if let Some((first, last, count)) = self.0 {
            // Safety: the caller's contract.
            unsafe { Pool::give_back(pool, first, last, count) };
        }
    }
}

/// Nodes a shard retired together, and the pool their blocks go back to.
struct Retired<K, V> {
    nodes: Vec<*mut Node<K, V>>,
    pool: *const Pool,
}

/// Reclaimer for a batch of removed or replaced nodes (see [`Writer::hand_over`]).
///
/// # Safety
/// `ptr` came from `Box::into_raw`; each node in it is as [`drop_node`] requires, listed once,
/// and a block of the batch's pool.
unsafe fn reclaim_batch<K, V>(ptr: *mut Retired<K, V>, _: &Collector) {
    // Safety: the caller's contract; the collector calls this once no guard can reach them.
    let batch = unsafe { Box::from_raw(ptr) };
    let mut chain = Chain(None);
    for &node in batch.nodes.iter() {
        // Safety: as above.
        unsafe { drop_node(node) };
        // Safety: from `Node::allocate`, so non-null.
        chain.push(unsafe { NonNull::new_unchecked(node) }.cast());
    }
    // Safety: the dropped nodes' blocks, each once, of the pool they were allocated from.
    unsafe { chain.give_back(batch.pool) };
}

/// Reclaimer for an outgrown table whose nodes live on in the next table.
///
/// # Safety
/// `ptr` came from `Box::into_raw` and no thread can reach it any more.
unsafe fn reclaim_table<K, V>(ptr: *mut Table<K, V>, _: &Collector) {
    // Safety: the caller's contract.
    drop(unsafe { Box::from_raw(ptr) });
}

/// A table dropped by `clear` or emptied, with the pool its nodes' blocks go back to.
struct RetiredTable<K, V> {
    table: *mut Table<K, V>,
    pool: *const Pool,
}

/// Reclaimer for a [`RetiredTable`]: frees the table, drops its nodes, gives their blocks back.
///
/// # Safety
/// `ptr` came from `Box::into_raw`; neither its table nor the table's nodes can be reached any
/// more, and the nodes are blocks of its pool.
unsafe fn reclaim_table_and_nodes<K, V>(ptr: *mut RetiredTable<K, V>, _: &Collector) {
    // Safety: the caller's contract.
    let retired = unsafe { Box::from_raw(ptr) };
    let mut chain = Chain(None);
    // Safety: the caller's contract; a table retired by `reset` has no MOVED marks.
    unsafe { free_table(retired.table, |_| true, |block| chain.push(block)) };
    // Safety: the dropped nodes' blocks, each once, of the pool they came from.
    unsafe { chain.give_back(retired.pool) };
}
