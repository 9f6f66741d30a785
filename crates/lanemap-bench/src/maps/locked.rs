//! A single-threaded map behind one lock: what people write before they reach for a crate.

use super::{BenchMap, BuildConfig, Hasher, MapHandle};
use crate::value::Value;
use std::collections::HashMap as StdHashMap;
use std::sync::{Mutex, PoisonError, RwLock};

/// `std::sync::RwLock<std::collections::HashMap>`.
pub struct RwLockStd<V, S>(RwLock<StdHashMap<u64, V, S>>);

/// `std::sync::Mutex<std::collections::HashMap>`.
pub struct MutexStd<V, S>(Mutex<StdHashMap<u64, V, S>>);

/// `parking_lot::RwLock<hashbrown::HashMap>`.
pub struct PlRwLockHashbrown<V, S>(parking_lot::RwLock<hashbrown::HashMap<u64, V, S>>);

/// A thread's view of one of the locked maps: a shared reference.
pub struct Locked<'a, M>(&'a M);

impl<V: Value, S: Hasher> BenchMap<V> for RwLockStd<V, S> {
    type Handle<'a> = Locked<'a, Self>;
    fn build(config: &BuildConfig) -> Self {
        Self(RwLock::new(StdHashMap::with_capacity_and_hasher(
            config.capacity,
            S::default(),
        )))
    }
    fn handle(&self) -> Self::Handle<'_> {
        Locked(self)
    }
}

// The benchmark never panics while holding a lock, so poisoning is ignored.
impl<V: Value, S: Hasher> MapHandle<V> for Locked<'_, RwLockStd<V, S>> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .map(Value::first)
    }
    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        self.0
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, value);
    }
    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        self.0
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key)
            .is_some()
    }
    #[inline]
    fn update(&mut self, key: u64) -> bool {
        let mut map = self.0.0.write().unwrap_or_else(PoisonError::into_inner);
        map.get_mut(&key).map(Value::bump).is_some()
    }
}

impl<V: Value, S: Hasher> BenchMap<V> for MutexStd<V, S> {
    type Handle<'a> = Locked<'a, Self>;
    fn build(config: &BuildConfig) -> Self {
        Self(Mutex::new(StdHashMap::with_capacity_and_hasher(
            config.capacity,
            S::default(),
        )))
    }
    fn handle(&self) -> Self::Handle<'_> {
        Locked(self)
    }
}

impl<V: Value, S: Hasher> MapHandle<V> for Locked<'_, MutexStd<V, S>> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .map(Value::first)
    }
    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        self.0
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, value);
    }
    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        self.0
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key)
            .is_some()
    }
    #[inline]
    fn update(&mut self, key: u64) -> bool {
        let mut map = self.0.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get_mut(&key).map(Value::bump).is_some()
    }
}

impl<V: Value, S: Hasher> BenchMap<V> for PlRwLockHashbrown<V, S> {
    type Handle<'a> = Locked<'a, Self>;
    fn build(config: &BuildConfig) -> Self {
        Self(parking_lot::RwLock::new(
            hashbrown::HashMap::with_capacity_and_hasher(config.capacity, S::default()),
        ))
    }
    fn handle(&self) -> Self::Handle<'_> {
        Locked(self)
    }
}

impl<V: Value, S: Hasher> MapHandle<V> for Locked<'_, PlRwLockHashbrown<V, S>> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0.0.read().get(&key).map(Value::first)
    }
    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        self.0.0.write().insert(key, value);
    }
    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        self.0.0.write().remove(&key).is_some()
    }
    #[inline]
    fn update(&mut self, key: u64) -> bool {
        self.0.0.write().get_mut(&key).map(Value::bump).is_some()
    }
}
