//! scc 3 `HashMap`: bucket locks, entries inline, incremental resize.

use super::{BenchMap, BuildConfig, Hasher, MapHandle};
use crate::value::Value;
use scc::HashMap;

/// scc's [`HashMap`], used through its synchronous methods.
pub struct Scc<V, S: Hasher>(HashMap<u64, V, S>);

/// A thread's view of an [`Scc`] map.
pub struct SccHandle<'a, V, S: Hasher>(&'a HashMap<u64, V, S>);

impl<V: Value, S: Hasher> BenchMap<V> for Scc<V, S> {
    type Handle<'a> = SccHandle<'a, V, S>;

    fn build(config: &BuildConfig) -> Self {
        Self(HashMap::with_capacity_and_hasher(
            config.capacity,
            S::default(),
        ))
    }

    fn handle(&self) -> Self::Handle<'_> {
        SccHandle(&self.0)
    }
}

impl<V: Value, S: Hasher> MapHandle<V> for SccHandle<'_, V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0.read_sync(&key, |_, value| value.first())
    }
    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        // `upsert`, not `insert`: scc's insert refuses an existing key, std's replaces it.
        self.0.upsert_sync(key, value);
    }
    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        self.0.remove_sync(&key).is_some()
    }
    #[inline]
    fn update(&mut self, key: u64) -> bool {
        self.0.update_sync(&key, |_, value| value.bump()).is_some()
    }
}
