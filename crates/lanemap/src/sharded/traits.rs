//! std trait impls for [`ShardedMap`].

use super::{IntoIter, ShardedMap};
use crate::DefaultHashBuilder;
use crossbeam_utils::CachePadded;
use std::fmt;
use std::hash::{BuildHasher, Hash};

impl<K, V> Default for ShardedMap<K, V, DefaultHashBuilder> {
    /// An empty map, as [`ShardedMap::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for ShardedMap<K, V, S> {
    /// Formats the entries as a map, reading one shard at a time.
    ///
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u8, char> = [(1, 'a')].into_iter().collect();
    /// assert_eq!(format!("{map:?}"), "{1: 'a'}");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_map();
        self.for_each(|key, value| {
            out.entry(key, value);
        });
        out.finish()
    }
}

impl<K: Clone, V: Clone, S: Clone> Clone for ShardedMap<K, V, S> {
    /// Copies the map one shard at a time (each shard is a consistent copy of itself).
    ///
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u8, u8> = [(1, 1)].into_iter().collect();
    /// let copy = map.clone();
    /// map.insert(2, 2);
    /// assert_eq!(copy.len(), 1);
    /// ```
    fn clone(&self) -> Self {
        let _enter = self.enter("ShardedMap::clone");
        let shards = self
            .shards
            .iter()
            .map(|shard| CachePadded::new(super::Shard::new(shard.read().clone())))
            .collect();
        Self {
            shards,
            shift: self.shift,
            mask: self.mask,
            hasher: self.hasher.clone(),
        }
    }
}

impl<K, V, S> FromIterator<(K, V)> for ShardedMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher + Default,
{
    /// Collects entries into a new map; later duplicates replace earlier ones, as in std.
    ///
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<&str, i32> = [("a", 1), ("a", 2)].into_iter().collect();
    /// assert_eq!(map.get("a"), Some(2));
    /// ```
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let entries = entries.into_iter();
        let mut map = Self::with_capacity_and_hasher(entries.size_hint().0, S::default());
        map.extend(entries);
        map
    }
}

impl<K, V, S> Extend<(K, V)> for ShardedMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// Inserts every entry; later duplicates replace earlier ones.
    ///
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let mut map: ShardedMap<u8, u8> = ShardedMap::new();
    /// map.extend([(1, 1), (2, 2)]);
    /// assert_eq!(map.len(), 2);
    /// ```
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, entries: I) {
        (&*self).extend(entries);
    }
}

impl<K, V, S> Extend<(K, V)> for &ShardedMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// Inserts every entry through a shared reference, so several threads can extend one map.
    ///
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u8, u8> = ShardedMap::new();
    /// (&map).extend([(1, 1), (2, 2)]);
    /// assert_eq!(map.len(), 2);
    /// ```
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, entries: I) {
        for (key, value) in entries {
            self.insert(key, value);
        }
    }
}

impl<'a, K, V, S> Extend<(&'a K, &'a V)> for ShardedMap<K, V, S>
where
    K: Hash + Eq + Copy,
    V: Copy,
    S: BuildHasher,
{
    /// Inserts copies of borrowed entries, as std's `HashMap` does.
    ///
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let mut map: ShardedMap<u8, u8> = ShardedMap::new();
    /// map.extend([(&1, &10)]);
    /// assert_eq!(map.get(&1), Some(10));
    /// ```
    fn extend<I: IntoIterator<Item = (&'a K, &'a V)>>(&mut self, entries: I) {
        for (&key, &value) in entries {
            self.insert(key, value);
        }
    }
}

impl<K, V, S> Drop for ShardedMap<K, V, S> {
    /// Drops the entries one by one: if one entry's `Drop` panics, the others are still
    /// dropped (hashbrown's own table drop would stop there and leak the rest of the shard).
    fn drop(&mut self) {
        for shard in self.shards.iter_mut() {
            shard.get_mut().drain().for_each(drop);
        }
    }
}

impl<K, V, S> IntoIterator for ShardedMap<K, V, S> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    /// Moves the entries out, one shard after another; no locking is needed.
    ///
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u8, String> = [(1, "a".to_string())].into_iter().collect();
    /// let entries: Vec<(u8, String)> = map.into_iter().collect();
    /// assert_eq!(entries, [(1, "a".to_string())]);
    /// ```
    fn into_iter(mut self) -> IntoIter<K, V> {
        // Take the shards out; the map's own Drop then finds none.
        let tables = std::mem::take(&mut self.shards)
            .into_vec()
            .into_iter()
            .map(|shard| shard.into_inner().into_table())
            .collect();
        IntoIter::new(tables)
    }
}
