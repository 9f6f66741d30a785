//! One shard: a SwissTable behind its own reader-writer lock, with a length readers need not lock.

use crate::key_match;
use crate::sync::{AtomicUsize, Ordering, ReadGuard, RwLock, WriteGuard};
use equivalent::Equivalent;
use hashbrown::HashTable;
use std::ops::{Deref, DerefMut};

/// An entry stored inline in the table.
///
/// The full hash is kept beside the key so that growing or rehashing a shard never calls the
/// user's `Hash` again: such a call could panic halfway through a rehash, and hashbrown would then
/// have to drop the entries it had not yet placed. For keys whose `Eq` may be costly it also
/// rejects most non-matching keys before `Eq` runs (see [`Entry::matches`]).
///
/// `repr(C)` with the hash last: a lookup that does not compare hashes reads only the key and
/// the value, 16 contiguous bytes for `u64 -> u64`, so fewer 24-byte entries straddle two cache
/// lines (1 in 8 instead of 2 in 8).
#[derive(Clone)]
#[repr(C)]
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) hash: u64,
}

impl<K, V> Entry<K, V> {
    /// Whether this entry holds `key`, whose hash is `hash` (see [`key_match`]).
    ///
    /// [`key_match`]: crate::key_match
    #[inline]
    pub(crate) fn matches<Q: Equivalent<K> + ?Sized>(&self, hash: u64, key: &Q) -> bool {
        key_match::matches(&self.hash, &self.key, hash, key)
    }
}

/// The rehash function hashbrown needs when a shard grows.
#[inline]
pub(crate) fn stored_hash<K, V>(entry: &Entry<K, V>) -> u64 {
    entry.hash
}

pub(crate) type Table<K, V> = HashTable<Entry<K, V>>;

pub(crate) struct Shard<K, V> {
    table: RwLock<Table<K, V>>,
    /// `table.len()` as of the last write; read without the lock by [`ShardedMap::len`].
    ///
    /// [`ShardedMap::len`]: crate::ShardedMap::len
    len: AtomicUsize,
    /// The room the user asked for (`with_capacity`, `reserve`, or kept by `clear`), which
    /// removals never shrink the table below. Only read and written under the write lock.
    floor: AtomicUsize,
}

impl<K, V> Shard<K, V> {
    pub(crate) fn new(table: Table<K, V>) -> Self {
        let len = AtomicUsize::new(table.len());
        let floor = AtomicUsize::new(table.capacity());
        Self {
            table: RwLock::new(table),
            len,
            floor,
        }
    }

    #[inline]
    pub(crate) fn read(&self) -> ReadGuard<'_, Table<K, V>> {
        self.table.read()
    }

    #[inline]
    pub(crate) fn write(&self) -> ShardWriteGuard<'_, K, V> {
        ShardWriteGuard {
            table: self.table.write(),
            len: &self.len,
            floor: &self.floor,
        }
    }

    /// The entry count as of the last completed write.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        // Relaxed: the count is a statistic, ordered with nothing else; each write publishes its
        // own final count while it still holds the lock, so the value is never older than the
        // last write that has returned.
        self.len.load(Ordering::Relaxed)
    }

    pub(crate) fn get_mut(&mut self) -> &mut Table<K, V> {
        self.table.get_mut()
    }

    pub(crate) fn into_table(self) -> Table<K, V> {
        self.table.into_inner()
    }
}

/// Write access to a shard; when it goes away, even by unwinding out of a panicking callback,
/// it records the shard's new length.
pub(crate) struct ShardWriteGuard<'a, K, V> {
    table: WriteGuard<'a, Table<K, V>>,
    len: &'a AtomicUsize,
    floor: &'a AtomicUsize,
}

/// A shard smaller than this many entries never shrinks by itself: tiny tables would otherwise
/// shrink and regrow over and over for little memory.
const MIN_SHRINK_CAPACITY: usize = 128;

impl<K, V> ShardWriteGuard<'_, K, V> {
    /// After a removal: once the shard uses less than an eighth of its room, shrinks it to twice
    /// its entries (never below [`MIN_SHRINK_CAPACITY`] slots or the room the user asked for),
    /// so that a map that was emptied gives its memory back.
    ///
    /// Amortised O(1): the room above the user's floor was made by inserts, so a shrink to `2n`
    /// rehashes `n` entries after at least `n` removals (the table had room for `8n`), and the
    /// next growth needs `n` more inserts. Rehashing uses the stored hashes: no user code runs.
    #[inline]
    pub(crate) fn shrink_if_sparse(&mut self) {
        let (len, capacity) = (self.table.len(), self.table.capacity());
        if capacity >= MIN_SHRINK_CAPACITY && len < capacity / 8 {
            // Relaxed: only touched under the write lock, which orders it.
            let target = (len * 2).max(self.floor.load(Ordering::Relaxed));
            if target < capacity / 2 {
                self.table.shrink_to(target, stored_hash);
            }
        }
    }

    /// Records that the user asked for room for `entries`: removals keep at least that much.
    #[inline]
    pub(crate) fn keep_room(&self, entries: usize) {
        // Relaxed: as in `shrink_if_sparse`.
        self.floor.fetch_max(entries, Ordering::Relaxed);
    }

    /// Forgets the room the user asked for (`shrink_to_fit`).
    #[inline]
    pub(crate) fn forget_room(&self) {
        // Relaxed: as in `shrink_if_sparse`.
        self.floor.store(0, Ordering::Relaxed);
    }
}

impl<K, V> Drop for ShardWriteGuard<'_, K, V> {
    #[inline]
    fn drop(&mut self) {
        // Relaxed: see `Shard::len`; the lock release that follows orders it for the next writer.
        self.len.store(self.table.len(), Ordering::Relaxed);
    }
}

impl<K, V> Deref for ShardWriteGuard<'_, K, V> {
    type Target = Table<K, V>;

    #[inline]
    fn deref(&self) -> &Self::Target {
        &self.table
    }
}

impl<K, V> DerefMut for ShardWriteGuard<'_, K, V> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.table
    }
}
