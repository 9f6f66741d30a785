//! std trait impls for [`HashMap`].

use super::HashMap;
use crate::DefaultHashBuilder;
use std::fmt;
use std::hash::{BuildHasher, Hash};

impl<K, V> Default for HashMap<K, V, DefaultHashBuilder> {
    /// An empty map, as [`HashMap::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S> fmt::Debug for HashMap<K, V, S>
where
    K: fmt::Debug + Hash + Eq,
    V: fmt::Debug,
    S: BuildHasher,
{
    /// Formats the entries as a map, walking without locks.
    ///
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u8, char> = [(1, 'a')].into_iter().collect();
    /// assert_eq!(format!("{map:?}"), "{1: 'a'}");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pin().fmt(f)
    }
}

impl<K, V, S> Clone for HashMap<K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher + Clone,
{
    /// Copies the entries into a new map with the same hasher and shard count (a walk, not a
    /// snapshot, while writers run).
    ///
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u8, u8> = [(1, 1)].into_iter().collect();
    /// let copy = map.clone();
    /// map.insert(2, 2);
    /// assert_eq!(copy.len(), 1);
    /// ```
    fn clone(&self) -> Self {
        let copy = Self::with_shards(self.shard_count(), self.len(), self.hasher().clone());
        {
            let target = copy.pin();
            for (key, value) in self.pin().iter() {
                target.insert(key.clone(), value.clone());
            }
        }
        copy
    }
}

impl<K, V, S> FromIterator<(K, V)> for HashMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher + Default,
{
    /// Collects entries into a new map; later duplicates replace earlier ones.
    ///
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<&str, i32> = [("a", 1), ("a", 2)].into_iter().collect();
    /// assert_eq!(map.get("a"), Some(2));
    /// ```
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let entries = entries.into_iter();
        let mut map = Self::with_capacity_and_hasher(entries.size_hint().0, S::default());
        map.extend(entries);
        map
    }
}

impl<K, V, S> Extend<(K, V)> for HashMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// Inserts every entry; later duplicates replace earlier ones.
    ///
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let mut map: HashMap<u8, u8> = HashMap::new();
    /// map.extend([(1, 1), (2, 2)]);
    /// assert_eq!(map.len(), 2);
    /// ```
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, entries: I) {
        (&*self).extend(entries);
    }
}

impl<K, V, S> Extend<(K, V)> for &HashMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// Inserts every entry through a shared reference, one pin for all of them.
    ///
    /// ```
    /// use lanemap::HashMap;
    ///
    /// let map: HashMap<u8, u8> = HashMap::new();
    /// (&map).extend([(1, 1), (2, 2)]);
    /// assert_eq!(map.len(), 2);
    /// ```
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, entries: I) {
        let pinned = self.pin();
        for (key, value) in entries {
            pinned.insert(key, value);
        }
    }
}
