//! papaya 0.2: lock-free reads, one allocation per insert and per update.
//!
//! Two entries, because papaya's cost depends on how it is used: pinning per operation is the
//! simple API (`map.pin().get(..)`); holding one guard per thread and refreshing it now and
//! then is the fast one.

use super::{BenchMap, BuildConfig, Hasher, MapHandle};
use crate::value::Value;
use papaya::{Guard, HashMap, LocalGuard};

fn build<V, S: Hasher>(config: &BuildConfig) -> HashMap<u64, V, S> {
    HashMap::builder()
        .capacity(config.capacity)
        .hasher(S::default())
        .build()
}

/// papaya, pinned once per operation.
pub struct PapayaPin<V, S>(HashMap<u64, V, S>);

/// A thread's view of a [`PapayaPin`] map: pins on every call.
pub struct PinHandle<'a, V, S>(&'a HashMap<u64, V, S>);

impl<V: Value, S: Hasher> BenchMap<V> for PapayaPin<V, S> {
    type Handle<'a> = PinHandle<'a, V, S>;

    fn build(config: &BuildConfig) -> Self {
        Self(build(config))
    }

    fn handle(&self) -> Self::Handle<'_> {
        PinHandle(&self.0)
    }
}

impl<V: Value, S: Hasher> MapHandle<V> for PinHandle<'_, V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0.pin().get(&key).map(Value::first)
    }
    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        self.0.pin().insert(key, value);
    }
    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        self.0.pin().remove(&key).is_some()
    }
    #[inline]
    fn update(&mut self, key: u64) -> bool {
        self.0.pin().update(key, Value::bumped).is_some()
    }
}

/// papaya with one guard per thread, refreshed every few hundred operations (the runner's
/// `tick`) so that retired values can still be reclaimed.
pub struct PapayaGuard<V, S>(HashMap<u64, V, S>);

/// A thread's view of a [`PapayaGuard`] map: the map and the thread's guard.
pub struct GuardHandle<'a, V, S> {
    map: &'a HashMap<u64, V, S>,
    guard: LocalGuard<'a>,
}

impl<V: Value, S: Hasher> BenchMap<V> for PapayaGuard<V, S> {
    type Handle<'a> = GuardHandle<'a, V, S>;

    fn build(config: &BuildConfig) -> Self {
        Self(build(config))
    }

    fn handle(&self) -> Self::Handle<'_> {
        GuardHandle {
            map: &self.0,
            guard: self.0.guard(),
        }
    }
}

impl<V: Value, S: Hasher> MapHandle<V> for GuardHandle<'_, V, S> {
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
        self.map.update(key, Value::bumped, &self.guard).is_some()
    }
    fn tick(&mut self) {
        self.guard.refresh();
    }
}
