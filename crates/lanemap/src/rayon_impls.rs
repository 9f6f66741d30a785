//! `rayon` support (feature `rayon`): parallel collection, extension and visiting.

use crate::ShardedMap;
use rayon::iter::{FromParallelIterator, IntoParallelIterator, ParallelExtend, ParallelIterator};
use std::hash::{BuildHasher, Hash};

impl<K, V, S> ParallelExtend<(K, V)> for ShardedMap<K, V, S>
where
    K: Hash + Eq + Send + Sync,
    V: Send + Sync,
    S: BuildHasher + Sync,
{
    /// Inserts the entries from rayon's worker threads; later duplicates win in no fixed order.
    ///
    /// ```
    /// use lanemap::ShardedMap;
    /// use rayon::prelude::*;
    ///
    /// let mut map: ShardedMap<u32, u32> = ShardedMap::new();
    /// map.par_extend((0..1000u32).into_par_iter().map(|i| (i, i * 2)));
    /// assert_eq!(map.len(), 1000);
    /// ```
    fn par_extend<I: IntoParallelIterator<Item = (K, V)>>(&mut self, entries: I) {
        let map = &*self;
        entries.into_par_iter().for_each(|(key, value)| {
            map.insert(key, value);
        });
    }
}

impl<K, V, S> FromParallelIterator<(K, V)> for ShardedMap<K, V, S>
where
    K: Hash + Eq + Send + Sync,
    V: Send + Sync,
    S: BuildHasher + Default + Sync,
{
    /// Collects a parallel iterator into a new map.
    ///
    /// ```
    /// use lanemap::ShardedMap;
    /// use rayon::prelude::*;
    ///
    /// let map: ShardedMap<u32, u32> = (0..100u32).into_par_iter().map(|i| (i, i)).collect();
    /// assert_eq!(map.len(), 100);
    /// ```
    fn from_par_iter<I: IntoParallelIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut map = ShardedMap::with_hasher(S::default());
        map.par_extend(entries);
        map
    }
}

impl<K, V, S> ShardedMap<K, V, S>
where
    K: Send + Sync,
    V: Send + Sync,
    S: Sync,
{
    /// Calls `f` on every entry from rayon's worker threads, one shard per task under that
    /// shard's read lock (feature `rayon`).
    ///
    /// The same visiting guarantees as [`for_each`](Self::for_each); `f` must not call this map.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// let map: ShardedMap<u64, u64> = (0..1000).map(|i| (i, i)).collect();
    /// let total = AtomicU64::new(0);
    /// map.par_for_each(|_, v| {
    ///     total.fetch_add(*v, Ordering::Relaxed);
    /// });
    /// assert_eq!(total.into_inner(), 499_500);
    /// ```
    pub fn par_for_each(&self, f: impl Fn(&K, &V) + Sync + Send) {
        // Check the calling thread too: called from a callback of this map, the workers would
        // block on the shard that callback holds. Released before rayon starts, since rayon may
        // run the tasks below on this very thread.
        drop(self.enter("ShardedMap::par_for_each"));
        (0..self.shards.len()).into_par_iter().for_each(|index| {
            // Each worker marks the map as entered on its own thread.
            let _enter = self.enter("ShardedMap::par_for_each");
            for entry in self.shards[index].read().iter() {
                f(&entry.key, &entry.value);
            }
        });
    }
}
