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
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0.get_with(&key, Value::first)
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
        self.0.update(&key, Value::bump).is_some()
    }
}

/// [`HashMap`](lanemap::HashMap) through its std-like methods (each read pins on its own; writes
/// need no pin).
pub struct LockFree<V, S>(lanemap::HashMap<u64, V, S>);

/// A thread's view of a [`LockFree`] map: a plain shared reference.
pub struct LockFreeHandle<'a, V, S>(&'a lanemap::HashMap<u64, V, S>);

impl<V: Value, S: Hasher> BenchMap<V> for LockFree<V, S> {
    type Handle<'a> = LockFreeHandle<'a, V, S>;

    fn build(config: &BuildConfig) -> Self {
        Self(lanemap::HashMap::with_capacity_and_hasher(
            config.capacity,
            S::default(),
        ))
    }

    fn handle(&self) -> Self::Handle<'_> {
        LockFreeHandle(&self.0)
    }
}

impl<V: Value, S: Hasher> MapHandle<V> for LockFreeHandle<'_, V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0.get_with(&key, Value::first)
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
        self.0.update(&key, Value::bump).is_some()
    }
}

/// [`HashMap`](lanemap::HashMap) pinned once per thread and refreshed every few hundred
/// operations (the runner's `tick`), the way papaya's fast path is measured.
pub struct LockFreePinned<V, S>(lanemap::HashMap<u64, V, S>);

/// A thread's view of a [`LockFreePinned`] map: its pin.
pub struct PinnedHandle<'a, V, S> {
    pinned: lanemap::HashMapRef<'a, u64, V, S, lanemap::LocalGuard<'a>>,
}

impl<V: Value, S: Hasher> BenchMap<V> for LockFreePinned<V, S> {
    type Handle<'a> = PinnedHandle<'a, V, S>;

    fn build(config: &BuildConfig) -> Self {
        Self(lanemap::HashMap::with_capacity_and_hasher(
            config.capacity,
            S::default(),
        ))
    }

    fn handle(&self) -> Self::Handle<'_> {
        PinnedHandle {
            pinned: self.0.pin(),
        }
    }
}

impl<V: Value, S: Hasher> MapHandle<V> for PinnedHandle<'_, V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.pinned.get(&key).map(Value::first)
    }
    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        self.pinned.insert(key, value);
    }
    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        self.pinned.remove(&key).is_some()
    }
    #[inline]
    fn update(&mut self, key: u64) -> bool {
        self.pinned.update(&key, Value::bump).is_some()
    }
    fn tick(&mut self) {
        // Lets the map reclaim what the pin kept alive. (Assigning a new pin would not: it is
        // taken while the old one lives, nests inside it, and nothing would ever be freed.)
        self.pinned.refresh();
    }
}
