//! The limit: `hashbrown::HashMap` with no synchronisation, run on one thread.
//!
//! The map sits in a `Mutex` only so that it can be shared like the others; the thread's
//! handle takes the lock once, before the timed loop, and every operation then runs on the
//! bare table. A second thread would wait for the first to finish, so the runner uses this map
//! at one thread only, and reports its figure times the thread count as the ideal.

use super::{BenchMap, BuildConfig, Hasher, MapHandle};
use crate::value::Value;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A `hashbrown::HashMap` used without synchronisation.
pub struct Limit<V, S>(Mutex<hashbrown::HashMap<u64, V, S>>);

/// The thread's exclusive hold on the table.
pub struct LimitHandle<'a, V, S>(MutexGuard<'a, hashbrown::HashMap<u64, V, S>>);

impl<V: Value, S: Hasher> BenchMap<V> for Limit<V, S> {
    type Handle<'a> = LimitHandle<'a, V, S>;

    fn build(config: &BuildConfig) -> Self {
        Self(Mutex::new(hashbrown::HashMap::with_capacity_and_hasher(
            config.capacity,
            S::default(),
        )))
    }

    fn handle(&self) -> Self::Handle<'_> {
        LimitHandle(self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<V: Value, S: Hasher> MapHandle<V> for LimitHandle<'_, V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> Option<u64> {
        self.0.get(&key).map(Value::first)
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
        self.0.get_mut(&key).map(Value::bump).is_some()
    }
}
