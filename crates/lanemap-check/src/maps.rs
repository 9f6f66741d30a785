//! [`CheckedMap`]: the one trait a `u64 → u64` map implements to be checked by every driver.

use crate::history::{Call, Ret};
use crate::model::{VALUES, compute_rule, update_rule};
use lanemap::{Computed, Op};
use std::hash::BuildHasher;

/// The operations the checker exercises, on `u64` keys and values.
///
/// The methods mirror lanemap's own names and signatures (with `u64` keys passed by value), so
/// a lanemap map implements it by forwarding; [`forward_checked_map!`](crate::forward_checked_map)
/// writes that forwarding.
pub trait CheckedMap: Send + Sync {
    /// An empty map with room for about `capacity` entries (the drivers pass tiny capacities
    /// so that the map grows during the run).
    fn with_capacity(capacity: usize) -> Self
    where
        Self: Sized;
    /// `get(&k)`.
    fn get(&self, k: u64) -> Option<u64>;
    /// `insert(k, v)`.
    fn insert(&self, k: u64, v: u64) -> Option<u64>;
    /// `remove(&k)`.
    fn remove(&self, k: u64) -> Option<u64>;
    /// `get_or_insert_with(k, make)`.
    fn get_or_insert_with(&self, k: u64, make: impl FnOnce() -> u64) -> u64;
    /// `update(&k, f)`.
    fn update<R>(&self, k: u64, f: impl FnOnce(&mut u64) -> R) -> Option<R>;
    /// `compute(k, f)`.
    fn compute(&self, k: u64, f: impl FnOnce(Option<&u64>) -> Op<u64>) -> Computed<u64>;
    /// `remove_if(&k, f)`.
    fn remove_if(&self, k: u64, f: impl FnOnce(&u64) -> bool) -> Option<u64>;
    /// `compare_exchange(&k, &current, new)`, with the error reduced to the value found.
    fn compare_exchange(&self, k: u64, current: u64, new: u64) -> Result<u64, Option<u64>>;
    /// `swap(&k, v)`.
    fn swap(&self, k: u64, v: u64) -> Result<u64, u64>;
    /// `len()`.
    fn len(&self) -> usize;
    /// Whether `len() == 0`.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Calls `f` on every entry (the map's iteration, whichever form it has).
    fn for_each(&self, f: impl FnMut(u64, u64));
}

/// Implements [`CheckedMap`] for a lanemap map type by forwarding each method to the method of
/// the same name.
///
/// `lanemap_check` uses it for each of lanemap's maps; a new map takes one such line:
///
/// ```text
/// forward_checked_map!(
///     impl[S: BuildHasher + Default + Send + Sync] for lanemap::ShardedMap<u64, u64, S>,
///     |capacity| lanemap::ShardedMap::with_capacity_and_hasher(capacity, S::default())
/// );
/// ```
#[macro_export]
macro_rules! forward_checked_map {
    (impl[$($gen:tt)*] for $ty:ty, |$cap:ident| $make:expr) => {
        impl<$($gen)*> $crate::CheckedMap for $ty {
            fn with_capacity($cap: usize) -> Self {
                $make
            }
            fn get(&self, k: u64) -> Option<u64> {
                <$ty>::get(self, &k)
            }
            fn insert(&self, k: u64, v: u64) -> Option<u64> {
                <$ty>::insert(self, k, v)
            }
            fn remove(&self, k: u64) -> Option<u64> {
                <$ty>::remove(self, &k)
            }
            fn get_or_insert_with(&self, k: u64, make: impl FnOnce() -> u64) -> u64 {
                <$ty>::get_or_insert_with(self, k, make)
            }
            fn update<R>(&self, k: u64, f: impl FnOnce(&mut u64) -> R) -> Option<R> {
                <$ty>::update(self, &k, f)
            }
            fn compute(
                &self,
                k: u64,
                f: impl FnOnce(Option<&u64>) -> $crate::__private::Op<u64>,
            ) -> $crate::__private::Computed<u64> {
                <$ty>::compute(self, k, f)
            }
            fn remove_if(&self, k: u64, f: impl FnOnce(&u64) -> bool) -> Option<u64> {
                <$ty>::remove_if(self, &k, f)
            }
            fn compare_exchange(&self, k: u64, current: u64, new: u64) -> Result<u64, Option<u64>> {
                <$ty>::compare_exchange(self, &k, &current, new).map_err(|e| e.current)
            }
            fn swap(&self, k: u64, v: u64) -> Result<u64, u64> {
                <$ty>::swap(self, &k, v)
            }
            fn len(&self) -> usize {
                <$ty>::len(self)
            }
            fn for_each(&self, mut f: impl FnMut(u64, u64)) {
                <$ty>::for_each(self, |k, v| f(*k, *v))
            }
        }
    };
}

forward_checked_map!(
    impl[S: BuildHasher + Default + Send + Sync] for lanemap::ShardedMap<u64, u64, S>,
    |capacity| lanemap::ShardedMap::with_capacity_and_hasher(capacity, S::default())
);

forward_checked_map!(
    impl[S: BuildHasher + Default + Send + Sync] for lanemap::HashMap<u64, u64, S>,
    |capacity| lanemap::HashMap::with_capacity_and_hasher(capacity, S::default())
);

/// Runs `call` on `map` for `key` with the closures the [model](crate::model) specifies, and
/// reports what came back.
pub fn apply<M: CheckedMap>(map: &M, key: u64, call: Call) -> Ret {
    match call {
        Call::Get => Ret::Value(map.get(key)),
        Call::Insert(v) => Ret::Value(map.insert(key, v)),
        Call::Remove => Ret::Value(map.remove(key)),
        Call::GetOrInsertWith(v) => {
            let mut made = false;
            let value = map.get_or_insert_with(key, || {
                // A second run of the closure would be a bug in itself.
                assert!(!made, "get_or_insert_with ran its closure twice");
                made = true;
                v
            });
            Ret::Made { value, made }
        }
        Call::Update(d) => Ret::Value(map.update(key, |x| {
            let old = *x;
            *x = update_rule(d, old);
            old
        })),
        Call::Compute(a) => Ret::Computed(map.compute(key, |current| compute_rule(a, current))),
        Call::RemoveIf(v) => Ret::Value(map.remove_if(key, |x| *x == v)),
        Call::CompareExchange { current, new } => Ret::Cas(map.compare_exchange(key, current, new)),
        Call::Swap(v) => Ret::Swap(map.swap(key, v)),
    }
}

// Keep the value domain the model assumes.
const _: () = assert!(VALUES >= 2);
