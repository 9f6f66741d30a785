//! [`HashMap`]: reads that take no lock and write no shared memory, for read-heavy work.

mod iter;
mod pinned;
mod traits;

pub use iter::{Iter, Keys, Values};
pub use pinned::{HashMapRef, PinnedIter};

use crate::DefaultHashBuilder;
use crate::error::{CompareExchangeError, TryReserveError};
use crate::ops::{Computed, Op};
use crate::raw::RawMap;
use crate::reclaim::{LocalGuard, OwnedGuard, Unpinned};
use crate::reentrancy::Enter;
use equivalent::Equivalent;
use std::hash::{BuildHasher, Hash};

/// A concurrent hash map whose reads take no lock, perform no atomic read-modify-write, store
/// nothing to shared memory and never wait for a writer.
///
/// Writers lock one shard each (entries of different shards are written in parallel) and
/// publish immutable entries; a reader sees every entry either before or after a write, never
/// half-written. Removed and replaced entries are freed once no reader can still see them
/// (memory reclamation by [seize](https://docs.rs/seize)). Tables grow and shrink incrementally:
/// no write copies more than a small chunk of a table.
///
/// It has the same method names and meanings as [`ShardedMap`](crate::ShardedMap), so switching
/// between the two is a one-line change; methods that hand back an old value return a clone of
/// it here (`V: Clone`), because a reader may still be looking at the original. For reads
/// without cloning, [`pin`](Self::pin) the map and get `&V` references tied to the pin.
///
/// # Examples
/// ```
/// use lanemap::HashMap;
/// use std::thread;
///
/// let config: HashMap<&str, u32> = HashMap::new();
/// config.insert("timeout_ms", 250);
/// thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| {
///             // Reads never block, even while another thread writes.
///             assert_eq!(config.get("timeout_ms"), Some(250));
///         });
///     }
/// });
/// let pinned = config.pin();
/// assert_eq!(pinned.get("timeout_ms"), Some(&250));
/// ```
pub struct HashMap<K, V, S = DefaultHashBuilder> {
    pub(crate) raw: RawMap<K, V, S>,
}

impl<K, V> HashMap<K, V, DefaultHashBuilder> {
    /// Creates an empty map with a randomly seeded hasher.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<String, u32> = HashMap::new();
    /// assert!(map.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_capacity_and_hasher(0, DefaultHashBuilder::default())
    }

    /// Creates an empty map with room for at least `capacity` entries (with evenly spread keys).
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u64, u64> = HashMap::with_capacity(10_000);
    /// assert!(map.capacity() >= 10_000);
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_hasher(capacity, DefaultHashBuilder::default())
    }
}

impl<K, V, S> HashMap<K, V, S> {
    /// Creates an empty map that hashes keys with `hasher`.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    /// use std::collections::hash_map::RandomState;
    ///
    /// let map: HashMap<u32, u32, RandomState> = HashMap::with_hasher(RandomState::new());
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
    /// use lanemap::{DefaultHashBuilder, HashMap};
    ///
    /// let map: HashMap<u32, u32> = HashMap::with_capacity_and_hasher(100, DefaultHashBuilder::default());
    /// assert!(map.capacity() >= 100);
    /// ```
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        Self::with_shards(default_shard_count(), capacity, hasher)
    }

    /// Creates an empty map with `shards` write shards (rounded up to a power of two, at most
    /// 65536), room for `capacity` entries, hashing with `hasher`.
    ///
    /// More shards let more writers work at once; reads do not depend on the shard count.
    ///
    /// # Panics
    /// If `shards` is 0 or more than 65536.
    ///
    /// # Examples
    /// ```
    /// use lanemap::{DefaultHashBuilder, HashMap};
    ///
    /// let map: HashMap<u8, u8> = HashMap::with_shards(3, 0, DefaultHashBuilder::default());
    /// assert_eq!(map.shard_count(), 4);
    /// ```
    pub fn with_shards(shards: usize, capacity: usize, hasher: S) -> Self {
        assert!(
            (1..=crate::sharded::MAX_SHARDS).contains(&shards),
            "lanemap: a HashMap needs between 1 and {} shards, not {shards}",
            crate::sharded::MAX_SHARDS
        );
        Self {
            raw: RawMap::new(shards.next_power_of_two(), capacity, hasher),
        }
    }

    /// The number of entries: one counter per shard, added up without locking; exact when no
    /// write is in flight.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// map.insert("a", 1);
    /// assert_eq!(map.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the map has no entries (see [`len`](Self::len)).
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u8, u8> = HashMap::new();
    /// assert!(map.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many entries the tables hold before they next grow (summed over shards).
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u8, u8> = HashMap::with_capacity(100);
    /// assert!(map.capacity() >= 100);
    /// ```
    pub fn capacity(&self) -> usize {
        let _enter = self.enter("HashMap::capacity");
        self.raw.capacity()
    }

    /// The number of write shards.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u8, u8> = HashMap::new();
    /// assert!(map.shard_count().is_power_of_two());
    /// ```
    pub fn shard_count(&self) -> usize {
        self.raw.shard_count()
    }

    /// The map's hasher.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    /// use std::hash::BuildHasher;
    ///
    /// let map: HashMap<u8, u8> = HashMap::new();
    /// let _ = map.hasher().hash_one(1u8);
    /// ```
    pub fn hasher(&self) -> &S {
        &self.raw.hasher
    }

    /// A guard for this thread: while it lives, entries it was used to read stay allocated.
    ///
    /// Most code uses [`pin`](Self::pin) instead, which bundles a guard with the map.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u8, u8> = HashMap::new();
    /// let guard = map.guard();
    /// drop(guard);
    /// ```
    pub fn guard(&self) -> LocalGuard<'_> {
        self.raw.collector().enter()
    }

    /// A guard that may move between threads (`Send`), for pins held across `.await`.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u8, u8> = HashMap::new();
    /// let guard = map.owned_guard();
    /// std::thread::scope(|s| {
    ///     s.spawn(move || drop(guard));
    /// });
    /// ```
    pub fn owned_guard(&self) -> OwnedGuard<'_> {
        self.raw.collector().enter_owned()
    }

    /// Pins the map for this thread: the returned handle reads by reference and amortises the
    /// cost of entering the reclamation scheme over many operations.
    ///
    /// Entries removed while a pin lives are not freed until it is dropped or
    /// [refreshed](HashMapRef::refresh), so refresh a pin that a thread keeps for a long
    /// stretch of work.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u32, String> = HashMap::new();
    /// let pinned = map.pin();
    /// pinned.insert(1, "one".to_string());
    /// let one: &String = pinned.get(&1).unwrap();
    /// assert_eq!(one, "one");
    /// ```
    pub fn pin(&self) -> HashMapRef<'_, K, V, S, LocalGuard<'_>> {
        HashMapRef::new(self, self.guard())
    }

    /// Pins the map with a guard that is `Send`, so the handle can be held across `.await`
    /// in a multi-threaded async runtime.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u32, u32> = HashMap::new();
    /// map.insert(1, 10);
    /// let pinned = map.pin_owned();
    /// std::thread::scope(|s| {
    ///     s.spawn(move || assert_eq!(pinned.get(&1), Some(&10)));
    /// });
    /// ```
    pub fn pin_owned(&self) -> HashMapRef<'_, K, V, S, OwnedGuard<'_>> {
        HashMapRef::new(self, self.owned_guard())
    }

    #[inline]
    pub(crate) fn enter(&self, method: &'static str) -> Enter {
        Enter::new(self.raw.id(), method)
    }

    /// The guard of a write that reads nothing after it unlocks: it pins nothing (see
    /// `reclaim::Retire`). Made before the re-entrancy mark, so that what the write retires is
    /// handed to reclamation, which may drop values at once, after the mark is gone.
    pub(crate) fn unpinned(&self) -> Unpinned<'_> {
        Unpinned::new(self.raw.collector())
    }
}

impl<K, V, S> HashMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// Starts freeing removed or replaced entries now, instead of when their batches fill:
    /// each is dropped as soon as no reader can still see it, which is at once if no other
    /// thread is inside the map and this one holds no guard or pin of it.
    ///
    /// Removed entries first gather in their shard, 32 at a time, and each full group joins the
    /// reclamation batch of the thread that removed the last of them, 32 objects a batch (such
    /// groups, and groups of vacated slots). This call hands every shard's partial group to
    /// this thread's batch, and hands that batch over. The call enters the map itself, so a batch needs at least one entry per thread
    /// inside the map at that moment, this one included; a smaller batch waits for more
    /// removals (or for the map to drop). Groups that joined another thread's batch, or a
    /// [`pin_owned`](Self::pin_owned) handle's (batched with that handle's guard), are freed
    /// when those batches fill, or when the map drops. Entries removed from a shard while its
    /// table is being resized wait for the resize to end (readers may still reach them through
    /// the old table), so this call first finishes any resize under way, in one go.
    ///
    /// Removed entries are otherwise dropped in batches, some time after their removal; call
    /// this when their `Drop` matters, for example values that hold a file or a connection.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    /// use std::sync::Arc;
    ///
    /// let map: HashMap<u32, Arc<()>> = HashMap::new();
    /// let value = Arc::new(());
    /// map.insert(1, Arc::clone(&value));
    /// assert!(map.remove(&1).is_some()); // a clone of the removed value, dropped here
    /// map.flush_removed();
    /// assert_eq!(Arc::strong_count(&value), 1, "the map's copy is gone");
    /// ```
    pub fn flush_removed(&self) {
        use crate::reclaim::Guard;
        // It locks every shard in turn: from inside a callback, that would deadlock.
        let _enter = self.enter("HashMap::flush_removed");
        // The batch is handed to every active guard's list, this one's included; ending it
        // frees whatever no other guard holds back.
        let guard = self.guard();
        self.raw.hand_over_removed(&guard);
        guard.flush();
        drop(guard);
    }

    /// Removes every entry, one shard at a time; the tables shrink to their minimum.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u32, u32> = (0..100).map(|i| (i, i)).collect();
    /// map.clear();
    /// assert!(map.is_empty());
    /// ```
    pub fn clear(&self) {
        let _enter = self.enter("HashMap::clear");
        self.raw.clear(&self.guard());
    }

    /// Shrinks every shard's table to fit its entries, giving memory back.
    ///
    /// Tables also shrink by themselves as entries are removed; this does it at once (entries
    /// live in the tables: see the [crate docs](crate#memory-hashmap)).
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
    /// map.retain(|&k, _| k < 10);
    /// map.shrink_to_fit();
    /// assert!(map.capacity() < 1000);
    /// ```
    pub fn shrink_to_fit(&self) {
        let _enter = self.enter("HashMap::shrink_to_fit");
        self.raw.shrink_to_fit(&self.guard());
    }

    /// Reserves room for at least `additional` more entries, spread evenly over the shards.
    ///
    /// # Panics
    /// If the capacity overflows; [`try_reserve`](Self::try_reserve) returns an error instead.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u64, u64> = HashMap::new();
    /// map.reserve(1000);
    /// assert!(map.capacity() >= 1000);
    /// ```
    pub fn reserve(&self, additional: usize) {
        if let Err(error) = self.try_reserve(additional) {
            panic!("lanemap: HashMap::reserve({additional}) failed: {error}");
        }
    }

    /// Tries to reserve room for `additional` more entries, reporting failure as an error.
    ///
    /// # Errors
    /// [`TryReserveError::CapacityOverflow`] if the capacity would not fit in memory,
    /// [`TryReserveError::AllocError`] if the allocator fails.
    ///
    /// # Examples
    /// ```
    /// use lanemap::{HashMap, TryReserveError};
    ///
    /// let map: HashMap<u64, u64> = HashMap::new();
    /// assert!(map.try_reserve(1000).is_ok());
    /// assert_eq!(map.try_reserve(usize::MAX), Err(TryReserveError::CapacityOverflow));
    /// ```
    pub fn try_reserve(&self, additional: usize) -> Result<(), TryReserveError> {
        // The whole map must fit, even though each shard only sees its share.
        TryReserveError::check_total(self.len(), additional)?;
        let _enter = self.enter("HashMap::try_reserve");
        self.raw.try_reserve(additional, &self.guard())
    }

    /// A clone of the value for `key`; lock-free.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// map.insert(String::from("k"), vec![1]);
    /// assert_eq!(map.get("k"), Some(vec![1]));
    /// assert_eq!(map.get("missing"), None);
    /// ```
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        self.get_with(key, V::clone)
    }

    /// Runs `f` on the value for `key` and returns what it returns; lock-free, so `f` may even
    /// call the map.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// map.insert(1, String::from("hello"));
    /// assert_eq!(map.get_with(&1, |s| s.len()), Some(5));
    /// ```
    #[inline]
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.raw.hash(key);
        let guard = self.guard();
        self.raw.get(hash, key, &guard).map(|node| f(&node.value))
    }

    /// Clones of the stored key and value for `key`.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// map.insert(String::from("k"), 1);
    /// assert_eq!(map.get_key_value("k"), Some((String::from("k"), 1)));
    /// ```
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(K, V)>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        K: Clone,
        V: Clone,
    {
        let hash = self.raw.hash(key);
        let guard = self.guard();
        self.raw
            .get(hash, key, &guard)
            .map(|node| (node.key.clone(), node.value.clone()))
    }

    /// Whether the map holds `key`; lock-free.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// map.insert(1, ());
    /// assert!(map.contains_key(&1));
    /// assert!(!map.contains_key(&2));
    /// ```
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.get_with(key, |_| ()).is_some()
    }

    /// Inserts `value` for `key`, returning a clone of the value it replaces.
    ///
    /// As in std, a replaced entry keeps its key (the new, equal one is dropped). The clone is
    /// made with the shard's write lock held, so `V::clone` must not call this map (it would
    /// panic). Without `V: Clone`, use [`pin`](Self::pin)`().insert`, which returns a reference
    /// instead.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// assert_eq!(map.insert(37, "a"), None);
    /// assert_eq!(map.insert(37, "b"), Some("a"));
    /// ```
    #[inline]
    pub fn insert(&self, key: K, value: V) -> Option<V>
    where
        V: Clone,
    {
        let hash = self.raw.hash(&key);
        let guard = self.unpinned();
        let _enter = self.enter("HashMap::insert");
        self.raw
            .insert_with(hash, key, value, &guard, |replaced| replaced.value.clone())
    }

    /// Removes `key`, returning a clone of its value.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// map.insert(1, "a");
    /// assert_eq!(map.remove(&1), Some("a"));
    /// assert_eq!(map.remove(&1), None);
    /// ```
    #[inline]
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        let hash = self.raw.hash(key);
        let guard = self.unpinned();
        let _enter = self.enter("HashMap::remove");
        let mut locked = self.raw.lock_present(hash, key, &guard)?;
        Some(locked.remove().value.clone())
    }

    /// Removes `key`, returning clones of the stored key and its value.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// map.insert(String::from("k"), 1);
    /// assert_eq!(map.remove_entry("k"), Some((String::from("k"), 1)));
    /// ```
    pub fn remove_entry<Q>(&self, key: &Q) -> Option<(K, V)>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        K: Clone,
        V: Clone,
    {
        let hash = self.raw.hash(key);
        let guard = self.unpinned();
        let _enter = self.enter("HashMap::remove");
        let mut locked = self.raw.lock_present(hash, key, &guard)?;
        let removed = locked.remove();
        Some((removed.key.clone(), removed.value.clone()))
    }

    /// Removes `key` if `f` returns `true` for its value, as one atomic step; returns a clone of
    /// the removed value.
    ///
    /// `f` runs at most once, with the shard's write lock held; it must not call this map (it
    /// would panic).
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// map.insert("alice", 10);
    /// assert_eq!(map.remove_if("alice", |&v| v == 11), None);
    /// assert_eq!(map.remove_if("alice", |&v| v == 10), Some(10));
    /// ```
    pub fn remove_if<Q>(&self, key: &Q, f: impl FnOnce(&V) -> bool) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        let hash = self.raw.hash(key);
        let guard = self.unpinned();
        let _enter = self.enter("HashMap::remove_if");
        let mut locked = self.raw.lock_present(hash, key, &guard)?;
        let node = locked.node()?;
        if !f(&node.value) {
            return None;
        }
        Some(locked.remove().value.clone())
    }

    /// Returns a clone of the value for `key`, first inserting `make()` if the key is absent.
    ///
    /// Atomic: `make` runs at most once per call, only when the key is absent, and no other
    /// thread can insert the key in between. A present key is found without locking.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let cache = HashMap::new();
    /// assert_eq!(cache.get_or_insert_with("config", || 42), 42);
    /// assert_eq!(cache.get_or_insert_with("config", || unreachable!()), 42);
    /// ```
    pub fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> V
    where
        V: Clone,
    {
        self.pin().get_or_insert_with(key, make).clone()
    }

    /// Runs `f` on a copy of the value for `key`, then publishes the changed copy, as one atomic
    /// step; returns what `f` returns, or `None` (and `f` not called) if the key is absent.
    ///
    /// Readers see the old value or the new one, never a half-changed one. `f` runs once, with
    /// the shard's write lock held, and must not call this map (it would panic). If `f` panics,
    /// the map keeps the old value.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let balances = HashMap::new();
    /// balances.insert("alice", 100);
    /// assert_eq!(balances.update("alice", |b| { *b -= 30; *b }), Some(70));
    /// assert_eq!(balances.get("alice"), Some(70));
    /// ```
    pub fn update<Q, R>(&self, key: &Q, f: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        let hash = self.raw.hash(key);
        let guard = self.unpinned();
        let _enter = self.enter("HashMap::update");
        let mut locked = self.raw.lock_present(hash, key, &guard)?;
        let mut value = locked.node()?.value.clone();
        let result = f(&mut value);
        locked.replace(value);
        Some(result)
    }

    /// Changes the value for `key` with `update` (on a copy, then published) if present, or
    /// inserts `insert()` if absent, as one atomic step.
    ///
    /// Exactly one closure runs, with the shard's write lock held; neither may call this map.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let counts = HashMap::new();
    /// for word in ["a", "b", "a"] {
    ///     counts.upsert(word, || 1, |n| *n += 1);
    /// }
    /// assert_eq!(counts.get("a"), Some(2));
    /// ```
    pub fn upsert(&self, key: K, insert: impl FnOnce() -> V, update: impl FnOnce(&mut V))
    where
        V: Clone,
    {
        let hash = self.raw.hash(&key);
        let guard = self.unpinned();
        let _enter = self.enter("HashMap::upsert");
        let mut locked = self.raw.lock(hash, &key, &guard);
        match locked.node() {
            Some(node) => {
                let mut value = node.value.clone();
                update(&mut value);
                locked.replace(value);
            }
            None => {
                locked.insert(key, insert());
            }
        }
    }

    /// Decides from the current value (or its absence) whether to keep, set or remove `key`, as
    /// one atomic step; the result hands back a clone of any value replaced or removed.
    ///
    /// `f` runs exactly once, with the shard's write lock held, and must not call this map.
    ///
    /// # Examples
    /// ```
    /// use lanemap::{Computed, HashMap, Op};
    ///
    /// let map: HashMap<&str, u32> = HashMap::new();
    /// assert_eq!(map.compute("k", |_| Op::Set(1)), Computed::Inserted);
    /// assert_eq!(map.compute("k", |v| Op::Set(v.unwrap() + 1)), Computed::Replaced(1));
    /// assert_eq!(map.compute("k", |_| Op::Remove), Computed::Removed(2));
    /// ```
    pub fn compute(&self, key: K, f: impl FnOnce(Option<&V>) -> Op<V>) -> Computed<V>
    where
        V: Clone,
    {
        let hash = self.raw.hash(&key);
        let guard = self.unpinned();
        let _enter = self.enter("HashMap::compute");
        let mut locked = self.raw.lock(hash, &key, &guard);
        let current = locked.node();
        match (f(current.map(|node| &node.value)), current) {
            (Op::Keep, _) | (Op::Remove, None) => Computed::Unchanged,
            (Op::Set(value), None) => {
                locked.insert(key, value);
                Computed::Inserted
            }
            (Op::Set(value), Some(_)) => {
                let replaced = locked.replace(value);
                // The entry keeps its key; drop the unused one before the clone exists (see
                // below).
                drop(key);
                Computed::Replaced(replaced.value.clone())
            }
            (Op::Remove, Some(_)) => {
                let removed = locked.remove();
                // Drop the unused key before the clone exists: if its Drop panicked after, the
                // clone would leak (rust-lang/rust#47949).
                drop(key);
                Computed::Removed(removed.value.clone())
            }
        }
    }

    /// Stores `new` for `key` if its value equals `current`, returning (a clone of) the value
    /// replaced; compare-and-swap on the value.
    ///
    /// # Errors
    /// [`CompareExchangeError`], holding a clone of the value found (`None` if absent) and
    /// giving `new` back, when the key is absent or its value differs.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// map.insert("version", 1);
    /// assert_eq!(map.compare_exchange("version", &1, 2), Ok(1));
    /// assert_eq!(map.compare_exchange("version", &1, 3).unwrap_err().current, Some(2));
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
        let hash = self.raw.hash(key);
        let guard = self.unpinned();
        let _enter = self.enter("HashMap::compare_exchange");
        let mut locked = self.raw.lock(hash, key, &guard);
        match locked.node() {
            Some(node) if node.value == *current => Ok(locked.replace(new).value.clone()),
            Some(node) => Err(CompareExchangeError {
                current: Some(node.value.clone()),
                new,
            }),
            None => Err(CompareExchangeError { current: None, new }),
        }
    }

    /// Replaces the value of a key that is present, returning a clone of the previous value;
    /// never inserts (`Err(value)` gives the value back if the key is absent).
    ///
    /// # Errors
    /// `Err(value)` when the key is absent.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// assert_eq!(map.swap("k", 1), Err(1));
    /// map.insert("k", 0);
    /// assert_eq!(map.swap("k", 1), Ok(0));
    /// ```
    pub fn swap<Q>(&self, key: &Q, value: V) -> Result<V, V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        let hash = self.raw.hash(key);
        let guard = self.unpinned();
        let _enter = self.enter("HashMap::swap");
        match self.raw.lock_present(hash, key, &guard) {
            Some(mut locked) => Ok(locked.replace(value).value.clone()),
            None => Err(value),
        }
    }

    /// Keeps only the entries for which `f` returns `true`, one shard at a time (under that
    /// shard's write lock; `f` must not call this map).
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// map.retain(|_, v| v % 2 == 0);
    /// assert_eq!(map.len(), 5);
    /// ```
    pub fn retain(&self, f: impl FnMut(&K, &V) -> bool) {
        let _enter = self.enter("HashMap::retain");
        self.raw.retain(f, &self.guard());
    }

    /// Calls `f` on every entry without locking (see the [crate docs](crate#iteration) for
    /// what a concurrent walk sees). `f` may call the map.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u32, u32> = (1..=4).map(|i| (i, i * 10)).collect();
    /// let mut total = 0;
    /// map.for_each(|_, v| total += v);
    /// assert_eq!(total, 100);
    /// ```
    pub fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        for (key, value) in self.pin().iter() {
            f(key, value);
        }
    }

    /// An iterator over clones of the entries, lock-free (see the [crate docs](crate#iteration)).
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u32, char> = [(1, 'a'), (2, 'b')].into_iter().collect();
    /// let mut entries: Vec<_> = map.iter().collect();
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

    /// An iterator over clones of the keys.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u32, ()> = [(3, ()), (4, ())].into_iter().collect();
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

    /// An iterator over clones of the values.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<&str, u32> = [("a", 1), ("b", 2)].into_iter().collect();
    /// assert_eq!(map.values().sum::<u32>(), 3);
    /// ```
    pub fn values(&self) -> Values<'_, K, V, S>
    where
        V: Clone,
    {
        Values::new(self)
    }
}

/// `(16 × available_parallelism).next_power_of_two()`: four times [`ShardedMap`]'s default.
///
/// Reads never touch a shard's lock, so shards cost a reader nothing but a larger array of
/// table pointers, while writers that meet on a shard queue behind its lock, and behind the
/// migration chunk it may be moving. Measured on 2 cores at 2 threads, 2^21 keys, against 8
/// shards in the same process: 32 shards wrote 1.27x as fast on exchange and 1.28x on
/// rapid-grow; 128 shards 1.43x and 1.78x, but cost read-heavy 7% at 1 thread (32: no change
/// outside the noise) and exchange at 1 thread about 9% (32: 5-8%).
///
/// [`ShardedMap`]: crate::ShardedMap
fn default_shard_count() -> usize {
    // Loom's models keep ShardedMap's few shards: a small state space.
    let per_core_factor = if cfg!(loom) { 1 } else { 4 };
    (crate::sharded::default_shard_count() * per_core_factor).min(crate::sharded::MAX_SHARDS)
}
