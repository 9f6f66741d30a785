//! [`ShardedMap`]: a map split into independently locked SwissTable shards, for write-heavy work.

mod builder;
mod iter;
pub(crate) mod shard;
mod traits;

pub use builder::ShardedMapBuilder;
pub use iter::{IntoIter, Iter, Keys, Values};

use crate::DefaultHashBuilder;
use crate::error::{CompareExchangeError, TryReserveError};
use crate::ops::{Computed, Op};
use crate::reentrancy::Enter;
use crossbeam_utils::CachePadded;
use equivalent::Equivalent;
use hashbrown::hash_table::Entry as TableEntry;
use shard::{Entry, Shard, Table, stored_hash};
use std::hash::{BuildHasher, Hash};

/// A concurrent hash map made of shards, each a SwissTable behind its own reader-writer lock.
///
/// Entries live inline in the tables (no allocation per insert or update), so writes cost about
/// what they cost in a single-threaded `HashMap`, plus one uncontended lock. Every method takes
/// `&self`; share the map between threads with an `Arc` or a scoped thread.
///
/// No method hands out a lock guard: reads return clones ([`get`](Self::get)) or run a closure
/// on the value in place ([`get_with`](Self::get_with), [`update`](Self::update)). Closures run
/// while their shard is locked and must not call the same map; if they do, the inner call panics
/// with a message naming both methods instead of deadlocking. See the [crate docs](crate) for the
/// consistency guarantees and for how this map compares to std's `HashMap`.
///
/// # Examples
/// ```
/// use lanemap::ShardedMap;
/// use std::thread;
///
/// let hits: ShardedMap<&str, u64> = ShardedMap::new();
/// thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| {
///             for _ in 0..1000 {
///                 hits.upsert("/index.html", || 1, |n| *n += 1);
///             }
///         });
///     }
/// });
/// assert_eq!(hits.get("/index.html"), Some(4000));
/// ```
pub struct ShardedMap<K, V, S = DefaultHashBuilder> {
    /// Invariant: the length is a power of two, `mask + 1`.
    pub(crate) shards: Box<[CachePadded<Shard<K, V>>]>,
    /// `57 - log2(shards.len())`, so that `(hash >> shift) & mask` picks a shard.
    shift: u32,
    /// `shards.len() - 1`; kept beside `shift` so that picking a shard is a shift and an and.
    mask: usize,
    hasher: S,
}

/// The largest shard count a builder accepts.
pub(crate) const MAX_SHARDS: usize = 1 << 16;

impl<K, V> ShardedMap<K, V, DefaultHashBuilder> {
    /// Creates an empty map with the default shard count and a randomly seeded hasher.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<String, u32> = ShardedMap::new();
    /// assert!(map.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_capacity_and_hasher(0, DefaultHashBuilder::default())
    }

    /// Creates an empty map that holds at least `capacity` entries before any shard grows,
    /// provided the keys spread evenly over the shards (a good hash makes them).
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u64, u64> = ShardedMap::with_capacity(10_000);
    /// assert!(map.capacity() >= 10_000);
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_hasher(capacity, DefaultHashBuilder::default())
    }
}

// `builder` lives on one concrete type: in a generic impl, `ShardedMap::builder()` could not
// infer the key and value types, which only `build` fixes.
impl ShardedMap<(), ()> {
    /// Starts a [`ShardedMapBuilder`] to set the shard count, capacity and hasher.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u64, u64> = ShardedMap::builder().shards(8).capacity(1024).build();
    /// assert_eq!(map.shard_count(), 8);
    /// ```
    pub fn builder() -> ShardedMapBuilder<DefaultHashBuilder> {
        ShardedMapBuilder::new()
    }
}

impl<K, V, S> ShardedMap<K, V, S> {
    /// Creates an empty map that hashes keys with `hasher`.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    /// use std::collections::hash_map::RandomState;
    ///
    /// let map: ShardedMap<u32, u32, RandomState> = ShardedMap::with_hasher(RandomState::new());
    /// map.insert(1, 2);
    /// assert_eq!(map.get(&1), Some(2));
    /// ```
    pub fn with_hasher(hasher: S) -> Self {
        Self::with_capacity_and_hasher(0, hasher)
    }

    /// Creates an empty map with room for `capacity` entries that hashes keys with `hasher`.
    ///
    /// # Examples
    /// ```
    /// use lanemap::{DefaultHashBuilder, ShardedMap};
    ///
    /// let map: ShardedMap<u32, u32> =
    ///     ShardedMap::with_capacity_and_hasher(100, DefaultHashBuilder::default());
    /// assert!(map.capacity() >= 100);
    /// ```
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        Self::from_parts(default_shard_count(), capacity, hasher)
    }

    /// Builds the map; `shards` must be a power of two within `1..=MAX_SHARDS`.
    pub(crate) fn from_parts(shards: usize, capacity: usize, hasher: S) -> Self {
        debug_assert!(shards.is_power_of_two() && shards <= MAX_SHARDS);
        let per_shard = capacity.div_ceil(shards);
        let shards: Box<[_]> = (0..shards)
            .map(|_| CachePadded::new(Shard::new(Table::with_capacity(per_shard))))
            .collect();
        let shift = 57 - shards.len().trailing_zeros();
        let mask = shards.len() - 1;
        Self {
            shards,
            shift,
            mask,
            hasher,
        }
    }

    /// The number of entries.
    ///
    /// Cheap: it adds up one counter per shard and takes no lock. While other threads write, the
    /// result is a count the map had at some moment during the call, or close to one; when no
    /// writer runs, it is exact.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map = ShardedMap::new();
    /// map.insert("a", 1);
    /// map.insert("b", 2);
    /// assert_eq!(map.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.len()).sum()
    }

    /// Whether the map has no entries (with the same caveat under concurrent writes as
    /// [`len`](Self::len)).
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map = ShardedMap::new();
    /// assert!(map.is_empty());
    /// map.insert(1, 1);
    /// assert!(!map.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|shard| shard.len() == 0)
    }

    /// How many entries the map can hold before some shard must grow (the sum over shards).
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u8, u8> = ShardedMap::with_capacity(64);
    /// assert!(map.capacity() >= 64);
    /// ```
    pub fn capacity(&self) -> usize {
        let _enter = self.enter("ShardedMap::capacity");
        self.shards
            .iter()
            .map(|shard| shard.read().capacity())
            .sum()
    }

    /// The number of shards (a power of two).
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u8, u8> = ShardedMap::builder().shards(5).build();
    /// assert_eq!(map.shard_count(), 8); // rounded up to a power of two
    /// ```
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The map's hasher.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    /// use std::hash::BuildHasher;
    ///
    /// let map: ShardedMap<u8, u8> = ShardedMap::new();
    /// let _same_hash_as_the_map = map.hasher().hash_one(7u8);
    /// ```
    pub fn hasher(&self) -> &S {
        &self.hasher
    }

    /// Removes every entry, one shard at a time, keeping the allocated capacity.
    ///
    /// Entries inserted into a shard after it was cleared stay. The removed values are dropped
    /// while their shard is locked.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u32, u32> = (0..100).map(|i| (i, i)).collect();
    /// map.clear();
    /// assert!(map.is_empty());
    /// ```
    pub fn clear(&self) {
        let _enter = self.enter("ShardedMap::clear");
        for shard in self.shards.iter() {
            let mut table = shard.write();
            // As std's `clear`, keep the room: later removals do not shrink below it.
            table.keep_room(table.capacity());
            // `drain` rather than `clear`: if one value's Drop panics, unwinding drops the
            // rest and still leaves an empty table, where `clear` would leak them.
            table.drain().for_each(drop);
        }
    }

    /// Calls `f` on every entry, one shard at a time, under that shard's read lock.
    ///
    /// Sees each entry present for the whole call exactly once; see the
    /// [crate docs](crate#iteration) for entries that change meanwhile. `f` must not call this
    /// map (it would panic).
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u32, u32> = (1..=4).map(|i| (i, i * 10)).collect();
    /// let mut total = 0;
    /// map.for_each(|_key, value| total += value);
    /// assert_eq!(total, 100);
    /// ```
    pub fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        let _enter = self.enter("ShardedMap::for_each");
        for shard in self.shards.iter() {
            for entry in shard.read().iter() {
                f(&entry.key, &entry.value);
            }
        }
    }

    /// Keeps only the entries for which `f` returns `true`, one shard at a time; `f` may also
    /// change the values it keeps.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// map.retain(|_key, value| {
    ///     *value *= 2;
    ///     *value % 4 == 0
    /// });
    /// assert_eq!(map.len(), 5);
    /// assert_eq!(map.get(&2), Some(4));
    /// ```
    pub fn retain(&self, mut f: impl FnMut(&K, &mut V) -> bool) {
        let _enter = self.enter("ShardedMap::retain");
        for shard in self.shards.iter() {
            let mut table = shard.write();
            table.retain(|entry| f(&entry.key, &mut entry.value));
            table.shrink_if_sparse();
        }
    }

    /// An iterator over clones of the entries, visiting one shard at a time.
    ///
    /// Each shard is copied out under its read lock when the iterator reaches it, so no lock is
    /// held between calls to `next` and the loop body may use the map freely.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u32, char> = [(1, 'a'), (2, 'b')].into_iter().collect();
    /// let mut entries: Vec<(u32, char)> = map.iter().collect();
    /// entries.sort();
    /// assert_eq!(entries, [(1, 'a'), (2, 'b')]);
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V, S>
    where
        K: Clone,
        V: Clone,
    {
        Iter::new(self)
    }

    /// An iterator over clones of the keys, visiting one shard at a time (see
    /// [`iter`](Self::iter)).
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u32, ()> = [(3, ()), (4, ())].into_iter().collect();
    /// let mut keys: Vec<u32> = map.keys().collect();
    /// keys.sort();
    /// assert_eq!(keys, [3, 4]);
    /// ```
    pub fn keys(&self) -> Keys<'_, K, V, S>
    where
        K: Clone,
    {
        Keys::new(self)
    }

    /// An iterator over clones of the values, visiting one shard at a time (see
    /// [`iter`](Self::iter)).
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<&str, u32> = [("a", 1), ("b", 2)].into_iter().collect();
    /// assert_eq!(map.values().sum::<u32>(), 3);
    /// ```
    pub fn values(&self) -> Values<'_, K, V, S>
    where
        V: Clone,
    {
        Values::new(self)
    }

    /// Gives the shrinkable memory back: each shard shrinks to fit its entries.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
    /// map.retain(|&k, _| k < 10);
    /// map.shrink_to_fit();
    /// assert!(map.capacity() < 1000);
    /// ```
    pub fn shrink_to_fit(&self) {
        let _enter = self.enter("ShardedMap::shrink_to_fit");
        for shard in self.shards.iter() {
            let mut table = shard.write();
            table.forget_room();
            table.shrink_to_fit(stored_hash);
        }
    }

    /// Reserves room for at least `additional` more entries, spread evenly over the shards.
    ///
    /// # Panics
    /// If the new capacity overflows `usize`; [`try_reserve`](Self::try_reserve) returns an error
    /// instead.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u64, u64> = ShardedMap::new();
    /// map.reserve(1000);
    /// assert!(map.capacity() >= 1000);
    /// ```
    pub fn reserve(&self, additional: usize) {
        if let Err(error) = self.try_reserve(additional) {
            panic!("lanemap: ShardedMap::reserve({additional}) failed: {error}");
        }
    }

    /// Tries to reserve room for at least `additional` more entries, spread evenly over the
    /// shards, and reports failure as an error rather than aborting.
    ///
    /// With keys that spread evenly, `additional` inserts then grow no shard; a skewed key set
    /// may still grow the shards it favours.
    ///
    /// # Errors
    /// [`TryReserveError::CapacityOverflow`] if the capacity would exceed what fits in memory,
    /// [`TryReserveError::AllocError`] if the allocator fails. Shards that had grown before the
    /// failure keep their new room.
    ///
    /// # Examples
    /// ```
    /// use lanemap::{ShardedMap, TryReserveError};
    ///
    /// let map: ShardedMap<u64, u64> = ShardedMap::new();
    /// assert!(map.try_reserve(1 << 10).is_ok());
    /// assert_eq!(map.try_reserve(usize::MAX), Err(TryReserveError::CapacityOverflow));
    /// ```
    pub fn try_reserve(&self, additional: usize) -> Result<(), TryReserveError> {
        // The whole map must fit, even though each shard only sees its share.
        TryReserveError::check_total(self.len(), additional)?;
        let per_shard = additional.div_ceil(self.shards.len());
        let _enter = self.enter("ShardedMap::try_reserve");
        for shard in self.shards.iter() {
            let mut table = shard.write();
            table.try_reserve(per_shard, stored_hash)?;
            let wanted = table.len() + per_shard;
            table.keep_room(wanted);
        }
        Ok(())
    }

    /// Marks this thread as inside the map, for the re-entrancy check.
    #[inline]
    pub(crate) fn enter(&self, method: &'static str) -> Enter {
        Enter::new(self.shards.as_ptr() as usize, method)
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard<K, V> {
        // hashbrown takes bucket indices from the low bits of the hash and its 7-bit tag from
        // the top ones; the bits just below the tag are free until a shard holds
        // 2^(57 - log2 shards) buckets, so choosing the shard with them keeps the entries of one
        // shard spread over its whole table.
        &self.shards[self.shard_index(hash)]
    }

    #[inline]
    fn shard_index(&self, hash: u64) -> usize {
        // Two instructions, against four for the former `(hash << 7) >> 1 >> shift` (the extra
        // shift made one shard, a shift by 64, well defined).
        (hash >> self.shift) as usize & self.mask
    }
}

impl<K, V, S> ShardedMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    #[inline]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    /// A clone of the value for `key`.
    ///
    /// Takes the shard's read lock for the time of the clone; use [`get_with`](Self::get_with)
    /// to read without cloning.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map = ShardedMap::new();
    /// map.insert(String::from("k"), vec![1, 2]);
    /// assert_eq!(map.get("k"), Some(vec![1, 2]));
    /// assert_eq!(map.get("missing"), None);
    /// ```
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        self.read_with("ShardedMap::get", key, V::clone)
    }

    /// Runs `f` on the value for `key` in place, under the shard's read lock, and returns what it
    /// returns; `None` if the key is absent.
    ///
    /// `f` must not call this map (it would panic); keep it short, since writers to the shard wait
    /// for it.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map = ShardedMap::new();
    /// map.insert(1, String::from("hello"));
    /// assert_eq!(map.get_with(&1, |s| s.len()), Some(5));
    /// assert_eq!(map.get_with(&2, |s| s.len()), None);
    /// ```
    #[inline]
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.read_with("ShardedMap::get_with", key, f)
    }

    /// `get_with`, entered as `method` so that a re-entrancy panic names the method called.
    #[inline]
    fn read_with<Q, R>(&self, method: &'static str, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash(key);
        let _enter = self.enter(method);
        let table = self.shard(hash).read();
        let entry = table.find(hash, |e| e.matches(hash, key))?;
        Some(f(&entry.value))
    }

    /// Clones of the key and the value stored for `key`.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map = ShardedMap::new();
    /// map.insert(String::from("k"), 1);
    /// assert_eq!(map.get_key_value("k"), Some((String::from("k"), 1)));
    /// ```
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(K, V)>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        K: Clone,
        V: Clone,
    {
        let hash = self.hash(key);
        let _enter = self.enter("ShardedMap::get_key_value");
        let table = self.shard(hash).read();
        let entry = table.find(hash, |e| e.matches(hash, key))?;
        Some((entry.key.clone(), entry.value.clone()))
    }

    /// Whether the map holds `key`.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map = ShardedMap::new();
    /// map.insert(1, ());
    /// assert!(map.contains_key(&1));
    /// assert!(!map.contains_key(&2));
    /// ```
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.read_with("ShardedMap::contains_key", key, |_| ())
            .is_some()
    }

    /// Inserts `value` for `key`, returning the value it replaces.
    ///
    /// As in std, an existing key is kept, not replaced by the new (equal) one.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map = ShardedMap::new();
    /// assert_eq!(map.insert(37, "a"), None);
    /// assert_eq!(map.insert(37, "b"), Some("a"));
    /// assert_eq!(map.get(&37), Some("b"));
    /// ```
    #[inline]
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        let hash = self.hash(&key);
        let _enter = self.enter("ShardedMap::insert");
        let mut table = self.shard(hash).write();
        match table.entry(hash, |e| e.matches(hash, &key), stored_hash) {
            TableEntry::Occupied(mut occupied) => {
                let old = std::mem::replace(&mut occupied.get_mut().value, value);
                // Drop the unused key before the return value exists: if its `Drop` panics,
                // `old` is still a local and unwinding drops it (a value being returned would
                // leak, rust-lang/rust#47949).
                drop(key);
                Some(old)
            }
            TableEntry::Vacant(vacant) => {
                vacant.insert(Entry { hash, key, value });
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map = ShardedMap::new();
    /// map.insert(1, "a");
    /// assert_eq!(map.remove(&1), Some("a"));
    /// assert_eq!(map.remove(&1), None);
    /// ```
    #[inline]
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let (stored_key, value) = self.remove_entry_if("ShardedMap::remove", key, |_| true)?;
        // A local, not a closure's return value: if the key's Drop panics, unwinding still
        // drops `value` (rust-lang/rust#47949).
        drop(stored_key);
        Some(value)
    }

    /// Removes `key`, returning the stored key and its value.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map = ShardedMap::new();
    /// map.insert(String::from("k"), 1);
    /// assert_eq!(map.remove_entry("k"), Some((String::from("k"), 1)));
    /// ```
    pub fn remove_entry<Q>(&self, key: &Q) -> Option<(K, V)>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.remove_entry_if("ShardedMap::remove_entry", key, |_| true)
    }

    /// Removes `key` if `f` returns `true` for its value, returning the removed value; the check
    /// and the removal are one atomic step.
    ///
    /// `f` must not call this map (it would panic).
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let sessions = ShardedMap::new();
    /// sessions.insert("alice", 10);
    /// // Go's CompareAndDelete: remove only if the value is still 10.
    /// assert_eq!(sessions.remove_if("alice", |&v| v == 11), None);
    /// assert_eq!(sessions.remove_if("alice", |&v| v == 10), Some(10));
    /// ```
    pub fn remove_if<Q>(&self, key: &Q, f: impl FnOnce(&V) -> bool) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let (stored_key, value) = self.remove_entry_if("ShardedMap::remove_if", key, f)?;
        // As in `remove`: no leak of `value` if the key's Drop panics.
        drop(stored_key);
        Some(value)
    }

    /// The one removal path, entered as `method` so that a re-entrancy panic names the method
    /// called.
    fn remove_entry_if<Q>(
        &self,
        method: &'static str,
        key: &Q,
        f: impl FnOnce(&V) -> bool,
    ) -> Option<(K, V)>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash(key);
        let _enter = self.enter(method);
        let mut table = self.shard(hash).write();
        let occupied = table.find_entry(hash, |e| e.matches(hash, key)).ok()?;
        if !f(&occupied.get().value) {
            return None;
        }
        let (entry, _) = occupied.remove();
        table.shrink_if_sparse();
        Some((entry.key, entry.value))
    }

    /// Returns a clone of the value for `key`, first inserting `make()` if the key is absent.
    ///
    /// Atomic: `make` runs at most once per call, only when the key is absent, and no other
    /// thread can insert the same key in between (it runs under the shard's write lock, so keep
    /// it short and do not call this map from it).
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let cache = ShardedMap::new();
    /// assert_eq!(cache.get_or_insert_with("config", || 42), 42);
    /// assert_eq!(cache.get_or_insert_with("config", || unreachable!()), 42);
    /// ```
    pub fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> V
    where
        V: Clone,
    {
        let hash = self.hash(&key);
        let _enter = self.enter("ShardedMap::get_or_insert_with");
        let shard = self.shard(hash);
        // Most calls find the key: try under the shared lock first, so that threads hitting the
        // same hot key do not queue for the write lock.
        let found = shard
            .read()
            .find(hash, |e| e.matches(hash, &key))
            .map(|e| e.value.clone());
        if let Some(value) = found {
            // See `insert`: the key goes before the return value exists.
            drop(key);
            return value;
        }
        let mut table = shard.write();
        // Teeth for the loom models (tests/loom_sharded.rs): the check-then-act bug, inserting
        // without looking again under the write lock. Never built outside those runs.
        #[cfg(lanemap_broken)]
        {
            let value = make();
            let entry = Entry { hash, key, value };
            return table
                .insert_unique(hash, entry, stored_hash)
                .get()
                .value
                .clone();
        }
        match table.entry(hash, |e| e.matches(hash, &key), stored_hash) {
            TableEntry::Occupied(occupied) => {
                let value = occupied.get().value.clone();
                drop(key);
                value
            }
            TableEntry::Vacant(vacant) => {
                let value = make();
                vacant
                    .insert(Entry { hash, key, value })
                    .get()
                    .value
                    .clone()
            }
        }
    }

    /// Runs `f` on the value for `key` in place, under the shard's write lock, and returns what it
    /// returns; `None` (and `f` not called) if the key is absent.
    ///
    /// `f` must not call this map (it would panic).
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let balances = ShardedMap::new();
    /// balances.insert("alice", 100);
    /// let after = balances.update("alice", |b| {
    ///     *b -= 30;
    ///     *b
    /// });
    /// assert_eq!(after, Some(70));
    /// assert_eq!(balances.update("bob", |b| *b), None);
    /// ```
    pub fn update<Q, R>(&self, key: &Q, f: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash(key);
        let _enter = self.enter("ShardedMap::update");
        let mut table = self.shard(hash).write();
        let entry = table.find_mut(hash, |e| e.matches(hash, key))?;
        Some(f(&mut entry.value))
    }

    /// Updates the value for `key` with `update` if present, or inserts `insert()` if absent,
    /// as one atomic step.
    ///
    /// Exactly one of the closures runs. Neither may call this map (it would panic).
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let counts = ShardedMap::new();
    /// for word in ["a", "b", "a"] {
    ///     counts.upsert(word, || 1, |n| *n += 1);
    /// }
    /// assert_eq!(counts.get("a"), Some(2));
    /// assert_eq!(counts.get("b"), Some(1));
    /// ```
    pub fn upsert(&self, key: K, insert: impl FnOnce() -> V, update: impl FnOnce(&mut V)) {
        let hash = self.hash(&key);
        let _enter = self.enter("ShardedMap::upsert");
        let mut table = self.shard(hash).write();
        match table.entry(hash, |e| e.matches(hash, &key), stored_hash) {
            TableEntry::Occupied(mut occupied) => update(&mut occupied.get_mut().value),
            TableEntry::Vacant(vacant) => {
                let value = insert();
                vacant.insert(Entry { hash, key, value });
            }
        }
    }

    /// Decides from the current value (or its absence) whether to keep, set or remove `key`, as
    /// one atomic step.
    ///
    /// `f` runs exactly once, under the shard's write lock, and must not call this map (it would
    /// panic). The result says what changed and hands back any value replaced or removed.
    ///
    /// # Examples
    /// ```
    /// use lanemap::{Computed, Op, ShardedMap};
    ///
    /// let map: ShardedMap<&str, u32> = ShardedMap::new();
    /// // Increment, starting at 1, and remove the key once it reaches 3.
    /// let bump = |v: Option<&u32>| match v {
    ///     None => Op::Set(1),
    ///     Some(&2) => Op::Remove,
    ///     Some(&n) => Op::Set(n + 1),
    /// };
    /// assert_eq!(map.compute("k", bump), Computed::Inserted);
    /// assert_eq!(map.compute("k", bump), Computed::Replaced(1));
    /// assert_eq!(map.compute("k", bump), Computed::Removed(2));
    /// assert_eq!(map.get("k"), None);
    /// ```
    pub fn compute(&self, key: K, f: impl FnOnce(Option<&V>) -> Op<V>) -> Computed<V> {
        let hash = self.hash(&key);
        let _enter = self.enter("ShardedMap::compute");
        let mut table = self.shard(hash).write();
        match table.entry(hash, |e| e.matches(hash, &key), stored_hash) {
            TableEntry::Occupied(mut occupied) => match f(Some(&occupied.get().value)) {
                Op::Keep => Computed::Unchanged,
                Op::Set(value) => {
                    let old = std::mem::replace(&mut occupied.get_mut().value, value);
                    // See `insert`: the keys go before the return value exists.
                    drop(key);
                    Computed::Replaced(old)
                }
                Op::Remove => {
                    let (entry, _) = occupied.remove();
                    table.shrink_if_sparse();
                    drop(entry.key);
                    drop(key);
                    Computed::Removed(entry.value)
                }
            },
            TableEntry::Vacant(vacant) => match f(None) {
                Op::Keep | Op::Remove => Computed::Unchanged,
                Op::Set(value) => {
                    vacant.insert(Entry { hash, key, value });
                    Computed::Inserted
                }
            },
        }
    }

    /// Stores `new` for `key` if its value equals `current`, returning the value replaced.
    ///
    /// Compare-and-swap on the value, as one atomic step. On failure nothing changes and the
    /// error holds a clone of the value found (`None` if the key is absent) and gives `new` back.
    ///
    /// # Errors
    /// [`CompareExchangeError`] when the key is absent or its value differs from `current`.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map = ShardedMap::new();
    /// map.insert("version", 1);
    /// assert_eq!(map.compare_exchange("version", &1, 2), Ok(1));
    /// let lost_race = map.compare_exchange("version", &1, 3).unwrap_err();
    /// assert_eq!(lost_race.current, Some(2));
    /// assert_eq!(map.get("version"), Some(2));
    /// ```
    pub fn compare_exchange<Q>(
        &self,
        key: &Q,
        current: &V,
        new: V,
    ) -> Result<V, CompareExchangeError<V>>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: PartialEq + Clone,
    {
        let hash = self.hash(key);
        let _enter = self.enter("ShardedMap::compare_exchange");
        let mut table = self.shard(hash).write();
        match table.find_mut(hash, |e| e.matches(hash, key)) {
            Some(entry) if entry.value == *current => Ok(std::mem::replace(&mut entry.value, new)),
            Some(entry) => Err(CompareExchangeError {
                current: Some(entry.value.clone()),
                new,
            }),
            None => Err(CompareExchangeError { current: None, new }),
        }
    }

    /// Replaces the value of a key that is present, returning the previous value; never inserts.
    ///
    /// If the key is absent nothing changes and `Err(value)` hands the value back. (Java's
    /// `ConcurrentHashMap::replace`; Go's `sync.Map.Swap`, which also inserts, is
    /// [`insert`](Self::insert).)
    ///
    /// # Errors
    /// `Err(value)` when the key is absent.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map = ShardedMap::new();
    /// assert_eq!(map.swap("k", 1), Err(1));
    /// map.insert("k", 0);
    /// assert_eq!(map.swap("k", 1), Ok(0));
    /// assert_eq!(map.get("k"), Some(1));
    /// ```
    pub fn swap<Q>(&self, key: &Q, value: V) -> Result<V, V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash(key);
        let _enter = self.enter("ShardedMap::swap");
        let mut table = self.shard(hash).write();
        match table.find_mut(hash, |e| e.matches(hash, key)) {
            Some(entry) => Ok(std::mem::replace(&mut entry.value, value)),
            None => Err(value),
        }
    }
}

/// `(4 × available_parallelism).next_power_of_two()`, computed once: asking the OS is a syscall
/// (and a cgroup read on Linux).
pub(crate) fn default_shard_count() -> usize {
    #[cfg(not(loom))]
    {
        static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *COUNT.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores * 4).next_power_of_two().min(MAX_SHARDS)
        })
    }
    // Models stay small: a few shards keep loom's state space tractable.
    #[cfg(loom)]
    {
        2
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn shard_bits_stay_clear_of_the_tag_and_the_low_index_bits() {
        let map: ShardedMap<u64, u64> = ShardedMap::builder().shards(4).build();
        // The two bits right below the 7-bit tag choose the shard.
        assert_eq!(map.shard_index(0), 0);
        assert_eq!(map.shard_index(1 << 55), 1);
        assert_eq!(map.shard_index(1 << 56), 2);
        assert_eq!(map.shard_index((u64::MAX >> 9) | 0xFE00_0000_0000_0000), 0);
        let one: ShardedMap<u64, u64> = ShardedMap::builder().shards(1).build();
        assert_eq!(one.shard_index(u64::MAX), 0);
    }
}
