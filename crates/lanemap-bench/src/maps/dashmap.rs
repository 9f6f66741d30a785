//! dashmap 6: shards behind reader-writer locks, guards returned to the caller.

use super::{BenchMap, BuildConfig, Hasher, MapHandle};
use crate::value::Value;
use dashmap::DashMap;

/// [`DashMap`]; `shards` sets its shard amount (rounded up to a power of two, at least 2).
pub struct Dash<V, S>(DashMap<u64, V, S>);

/// A thread's view of a [`Dash`] map.
pub struct DashHandle<'a, V, S>(&'a DashMap<u64, V, S>);

impl<V: Value, S: Hasher> BenchMap<V> for Dash<V, S> {
    type Handle<'a> = DashHandle<'a, V, S>;

    fn build(config: &BuildConfig) -> Self {
        Self(match config.shards {
            Some(shards) => DashMap::with_capacity_and_hasher_and_shard_amount(
                config.capacity,
                S::default(),
                shards.next_power_of_two().max(2),
            ),
            None => DashMap::with_capacity_and_hasher(config.capacity, S::default()),
        })
    }

    fn handle(&self) -> Self::Handle<'_> {
        DashHandle(&self.0)
    }
}

impl<V: Value, S: Hasher> MapHandle<V> for DashHandle<'_, V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0.get(&key).map(|value| value.first())
    }
    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        self.0.insert(key, value);
    }
    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        self.0.remove(&key).is_some()
    }
    #[inline]
    fn update(&mut self, key: u64) -> bool {
        self.0.get_mut(&key).map(|mut value| value.bump()).is_some()
    }
}
