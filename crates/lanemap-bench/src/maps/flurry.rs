//! flurry: a port of Java's `ConcurrentHashMap`, two allocations per entry.

use super::{BenchMap, BuildConfig, Hasher, MapHandle};
use crate::value::Value;
use flurry::{Guard, HashMap};

/// flurry's [`HashMap`], with one guard per thread (pinning per operation is slower still).
pub struct Flurry<V, S>(HashMap<u64, V, S>);

/// A thread's view of a [`Flurry`] map: the map and the thread's guard.
pub struct FlurryHandle<'a, V, S> {
    map: &'a HashMap<u64, V, S>,
    guard: Guard<'a>,
}

impl<V: Value, S: Hasher> BenchMap<V> for Flurry<V, S> {
    type Handle<'a> = FlurryHandle<'a, V, S>;

    fn build(config: &BuildConfig) -> Self {
        Self(HashMap::with_capacity_and_hasher(
            config.capacity,
            S::default(),
        ))
    }

    fn handle(&self) -> Self::Handle<'_> {
        FlurryHandle {
            map: &self.0,
            guard: self.0.guard(),
        }
    }
}

impl<V: Value, S: Hasher> MapHandle<V> for FlurryHandle<'_, V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.map.get(&key, &self.guard).map(Value::first)
    }
    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        self.map.insert(key, value, &self.guard);
    }
    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        self.map.remove(&key, &self.guard).is_some()
    }
    #[inline]
    fn update(&mut self, key: u64) -> bool {
        self.map
            .compute_if_present(&key, |_, value| Some(value.bumped()), &self.guard)
            .is_some()
    }
    fn tick(&mut self) {
        // A fresh guard lets flurry reclaim what this thread retired.
        self.guard = self.map.guard();
    }
}
