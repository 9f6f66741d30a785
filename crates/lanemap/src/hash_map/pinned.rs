//! [`HashMapRef`]: a map pinned to a guard, reading by reference.

use super::HashMap;
use crate::raw::Cursor;
use crate::reclaim::Guard;
use equivalent::Equivalent;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::iter::FusedIterator;

/// A [`HashMap`] pinned with a guard; made by [`HashMap::pin`] or [`HashMap::pin_owned`].
///
/// Reads return references that live as long as the borrow of the handle, with no locking and
/// no cloning; the guard is entered once for all of them. Entries removed while the handle
/// lives stay allocated until it is dropped.
///
/// # Examples
/// ```
/// use lanemap::HashMap;
///
/// let map: HashMap<&str, Vec<u8>> = HashMap::new();
/// let pinned = map.pin();
/// pinned.insert("blob", vec![1, 2, 3]);
/// let blob: &Vec<u8> = pinned.get("blob").unwrap();
/// let old = pinned.insert("blob", vec![4]); // `blob` stays valid
/// assert_eq!(blob, &[1, 2, 3]);
/// assert_eq!(old, Some(&vec![1, 2, 3]));
/// ```
pub struct HashMapRef<'m, K, V, S, G> {
    map: &'m HashMap<K, V, S>,
    guard: G,
}

impl<'m, K, V, S, G: Guard> HashMapRef<'m, K, V, S, G> {
    pub(super) fn new(map: &'m HashMap<K, V, S>, guard: G) -> Self {
        map.raw.verify(&guard);
        Self { map, guard }
    }

    /// Lets the map free what this handle has held back, as dropping it and pinning again
    /// would, but in place and cheaper. Call it now and then in a thread that keeps one handle
    /// for a long stretch of work.
    ///
    /// Prefer it to `pinned = map.pin()`: there the new pin is taken while the old one still
    /// lives, so it nests inside it and this thread never leaves the reclamation scheme.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    /// use std::sync::Arc;
    ///
    /// let map: HashMap<u32, Arc<()>> = HashMap::new();
    /// let value = Arc::new(());
    /// let mut pinned = map.pin();
    /// pinned.insert(1, Arc::clone(&value));
    /// pinned.remove(&1);
    /// map.flush_removed();
    /// assert_eq!(Arc::strong_count(&value), 2, "the pin still protects the removed value");
    /// pinned.refresh();
    /// assert_eq!(Arc::strong_count(&value), 1);
    /// ```
    pub fn refresh(&mut self) {
        self.guard.refresh();
    }

    /// The map this handle pins.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u8, u8> = HashMap::new();
    /// assert!(std::ptr::eq(map.pin().map(), &map));
    /// ```
    pub fn map(&self) -> &'m HashMap<K, V, S> {
        self.map
    }

    /// The number of entries (see [`HashMap::len`]).
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u8, u8> = HashMap::new();
    /// assert_eq!(map.pin().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map has no entries.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u8, u8> = HashMap::new();
    /// assert!(map.pin().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// An iterator over references to the entries, lock-free (see the
    /// [crate docs](crate#iteration)).
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// let pinned = map.pin();
    /// assert_eq!(pinned.iter().map(|(_, v)| v).sum::<u32>(), 45);
    /// ```
    pub fn iter(&self) -> PinnedIter<'_, K, V, S, G> {
        PinnedIter {
            pinned: self,
            cursor: Cursor::new(),
        }
    }
}

impl<K, V, S, G> HashMapRef<'_, K, V, S, G>
where
    K: Hash + Eq,
    S: BuildHasher,
    G: Guard,
{
    /// The value for `key`, by reference; lock-free.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// let pinned = map.pin();
    /// pinned.insert(String::from("k"), 1);
    /// assert_eq!(pinned.get("k"), Some(&1));
    /// ```
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.map.raw.hash(key);
        self.map
            .raw
            .get(hash, key, &self.guard)
            .map(|node| &node.value)
    }

    /// The stored key and its value, by reference.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// let pinned = map.pin();
    /// pinned.insert(1, 'a');
    /// assert_eq!(pinned.get_key_value(&1), Some((&1, &'a')));
    /// ```
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.map.raw.hash(key);
        self.map
            .raw
            .get(hash, key, &self.guard)
            .map(|node| (&node.key, &node.value))
    }

    /// Whether the map holds `key`.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// map.insert(1, ());
    /// assert!(map.pin().contains_key(&1));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Inserts `value` for `key`, returning the value it replaced, by reference.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// let pinned = map.pin();
    /// assert_eq!(pinned.insert(1, "a"), None);
    /// assert_eq!(pinned.insert(1, "b"), Some(&"a"));
    /// ```
    pub fn insert(&self, key: K, value: V) -> Option<&V> {
        let hash = self.map.raw.hash(&key);
        let _enter = self.map.enter("HashMap::insert");
        let replaced = self.map.raw.insert(hash, key, value, &self.guard);
        replaced.map(|node| &node.value)
    }

    /// Removes `key`, returning its value by reference.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// let pinned = map.pin();
    /// pinned.insert(1, "a");
    /// assert_eq!(pinned.remove(&1), Some(&"a"));
    /// assert_eq!(pinned.remove(&1), None);
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<&V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.remove_entry(key).map(|(_, value)| value)
    }

    /// Removes `key`, returning the stored key and its value by reference.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// let pinned = map.pin();
    /// pinned.insert(1, "a");
    /// assert_eq!(pinned.remove_entry(&1), Some((&1, &"a")));
    /// ```
    pub fn remove_entry<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.map.raw.hash(key);
        let _enter = self.map.enter("HashMap::remove");
        let mut locked = self.map.raw.lock_present(hash, key, &self.guard)?;
        let node = locked.remove_pinned();
        Some((&node.key, &node.value))
    }

    /// The value for `key`, inserting `make()` first if absent; atomic, and `make` runs at most
    /// once (with the shard's write lock held).
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// let pinned = map.pin();
    /// assert_eq!(pinned.get_or_insert_with("k", || 1), &1);
    /// assert_eq!(pinned.get_or_insert_with("k", || 2), &1);
    /// ```
    pub fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> &V {
        let hash = self.map.raw.hash(&key);
        // Most calls find the key: look without the lock first.
        if let Some(node) = self.map.raw.get(hash, &key, &self.guard) {
            return &node.value;
        }
        let _enter = self.map.enter("HashMap::get_or_insert_with");
        let mut locked = self.map.raw.lock(hash, &key, &self.guard);
        if let Some(node) = locked.node_pinned() {
            return &node.value;
        }
        &locked.insert_pinned(key, make()).value
    }

    /// Runs `f` on a copy of the value for `key`, then publishes the changed copy, as one atomic
    /// step (see [`HashMap::update`]); returns what `f` returns, or `None` if the key is absent.
    ///
    /// # Examples
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map = HashMap::new();
    /// let pinned = map.pin();
    /// pinned.insert("hits", 1);
    /// let before = pinned.get("hits").unwrap();
    /// assert_eq!(pinned.update("hits", |n| { *n += 1; *n }), Some(2));
    /// assert_eq!((before, pinned.get("hits")), (&1, Some(&2)));
    /// ```
    pub fn update<Q, R>(&self, key: &Q, f: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        // It keeps no reference: the unpinned write is the same.
        self.map.update(key, f)
    }
}

impl<K, V, S, G> fmt::Debug for HashMapRef<'_, K, V, S, G>
where
    K: fmt::Debug + Hash + Eq,
    V: fmt::Debug,
    S: BuildHasher,
    G: Guard,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// References to a pinned map's entries; made by [`HashMapRef::iter`].
pub struct PinnedIter<'p, K, V, S, G> {
    pinned: &'p HashMapRef<'p, K, V, S, G>,
    cursor: Cursor<K, V>,
}

impl<'p, K: Hash + Eq, V, S: BuildHasher, G: Guard> Iterator for PinnedIter<'p, K, V, S, G> {
    type Item = (&'p K, &'p V);

    fn next(&mut self) -> Option<(&'p K, &'p V)> {
        // Safety: every call passes the same map and the pinned handle's own guard.
        let node = unsafe { self.cursor.next(&self.pinned.map.raw, &self.pinned.guard) }?;
        Some((&node.key, &node.value))
    }
}

impl<K: Hash + Eq, V, S: BuildHasher, G: Guard> FusedIterator for PinnedIter<'_, K, V, S, G> {}

impl<K, V, S, G> fmt::Debug for PinnedIter<'_, K, V, S, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedIter").finish_non_exhaustive()
    }
}
