//! lanemap's maps.

use super::{BenchMap, BuildConfig, Hasher, MapHandle};
use crate::value::Value;
use lanemap::ShardedMap;

/// [`ShardedMap`], built with the shard count and capacity asked for.
pub struct Sharded<V, S>(ShardedMap<u64, V, S>);

/// A thread's view of a [`Sharded`] map: a plain shared reference.
pub struct ShardedHandle<'a, V, S>(&'a ShardedMap<u64, V, S>);

impl<V: Value, S: Hasher> BenchMap<V> for Sharded<V, S> {
    type Handle<'a> = ShardedHandle<'a, V, S>;

    fn build(config: &BuildConfig) -> Self {
        let mut builder = ShardedMap::builder()
            .capacity(config.capacity)
            .hasher(S::default());
        if let Some(shards) = config.shards {
            builder = builder.shards(shards);
        }
        Self(builder.build())
    }

    fn handle(&self) -> Self::Handle<'_> {
        ShardedHandle(&self.0)
    }
}

impl<V: Value, S: Hasher> MapHandle<V> for ShardedHandle<'_, V, S> {
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0.get_with(&key, Value::first)
    }
    fn insert(&mut self, key: u64, value: V) {
        self.0.insert(key, value);
    }
    fn remove(&mut self, key: u64) -> bool {
        self.0.remove(&key).is_some()
    }
    fn update(&mut self, key: u64) -> bool {
        self.0.update(&key, Value::bump).is_some()
    }
}
