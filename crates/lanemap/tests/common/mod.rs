//! What the integration tests share: one trait every map type implements, the list of map types
//! the tests run against, and helpers (anti-hang runner, panic messages, drop-counting types).
//!
//! # Adding a map type to the suite
//!
//! 1. Implement [`ConcurrentMap`] for it. If its methods have the same names and signatures as
//!    `ShardedMap`'s, one macro call does it (see the two below):
//!    `forward_concurrent_map!(MyMap, "MyMap", |shards, capacity| MyMap::..., { overrides });`
//!    where the closure builds a map from a shard count and a capacity, and the optional
//!    braces override defaults (`CALLBACKS_MAY_READ`, `retain_mut`, `removed_entries_dropped`).
//! 2. Add a family type (`pub struct Mine; impl Family for Mine { type Map<K, V> = ...; }`).
//! 3. Add one module for it to [`map_tests!`]; every generic test then runs against it too.
//!    Tests a map does not (yet) pass go after `sharded_only:` in that file, with a comment.
#![allow(dead_code, unused_macros, unused_imports)]

pub mod tracked;

use lanemap::{
    CompareExchangeError, Computed, Equivalent, HashMap, Op, ShardedMap, ShardedMapBuilder,
    TryReserveError,
};
use std::any::Any;
use std::cell::Cell;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hash};
use std::sync::Once;
use std::sync::mpsc;
use std::time::Duration;

/// What a key must be for the generic tests.
pub trait Key: Hash + Eq + Clone + Debug + Send + Sync + 'static {}
impl<T: Hash + Eq + Clone + Debug + Send + Sync + 'static> Key for T {}

/// What a value must be for the generic tests.
pub trait Value: Clone + PartialEq + Debug + Send + Sync + 'static {}
impl<T: Clone + PartialEq + Debug + Send + Sync + 'static> Value for T {}

/// The API every concurrent map of the crate shares, as the tests use it.
///
/// The std traits are part of it on purpose: the suite checks them for every map.
pub trait ConcurrentMap<K: Key, V: Value>:
    Sized + Send + Sync + Clone + Debug + FromIterator<(K, V)> + 'static
{
    /// The type's name as it appears in the map's panic messages, e.g. `"ShardedMap"`.
    const NAME: &'static str;

    /// Whether callbacks may call the map's lock-free reads (`get`, `get_with`,
    /// `contains_key`, `iter`, `for_each`), which then work instead of panicking; `get_with`'s
    /// and `for_each`'s own closures then run without a lock too.
    const CALLBACKS_MAY_READ: bool = false;

    /// A map with (about) `shards` shards and room for `capacity` entries; maps without shards
    /// ignore the first number.
    fn with_layout(shards: usize, capacity: usize) -> Self;

    /// A map with a few shards and no preallocated room.
    fn fresh() -> Self {
        Self::with_layout(8, 0)
    }

    fn get<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> Option<V>;
    fn get_with<Q: Hash + Equivalent<K> + ?Sized, R>(
        &self,
        key: &Q,
        f: impl FnOnce(&V) -> R,
    ) -> Option<R>;
    fn get_key_value<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> Option<(K, V)>;
    fn contains_key<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> bool;
    fn insert(&self, key: K, value: V) -> Option<V>;
    fn remove<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> Option<V>;
    fn remove_entry<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> Option<(K, V)>;
    fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> V;
    fn update<Q: Hash + Equivalent<K> + ?Sized, R>(
        &self,
        key: &Q,
        f: impl FnOnce(&mut V) -> R,
    ) -> Option<R>;
    fn upsert(&self, key: K, insert: impl FnOnce() -> V, update: impl FnOnce(&mut V));
    fn compute(&self, key: K, f: impl FnOnce(Option<&V>) -> Op<V>) -> Computed<V>;
    fn remove_if<Q: Hash + Equivalent<K> + ?Sized>(
        &self,
        key: &Q,
        f: impl FnOnce(&V) -> bool,
    ) -> Option<V>;
    fn compare_exchange<Q: Hash + Equivalent<K> + ?Sized>(
        &self,
        key: &Q,
        current: &V,
        new: V,
    ) -> Result<V, CompareExchangeError<V>>;
    fn swap<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q, value: V) -> Result<V, V>;
    fn retain(&self, f: impl FnMut(&K, &V) -> bool);
    /// `retain` whose closure may also change the values (ShardedMap's `retain`); returns
    /// `false`, having done nothing, for a map without one.
    fn retain_mut(&self, f: impl FnMut(&K, &mut V) -> bool) -> bool {
        let _ = f;
        false
    }
    fn clear(&self);
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool;
    fn for_each(&self, f: impl FnMut(&K, &V));
    fn iter(&self) -> Box<dyn Iterator<Item = (K, V)> + '_>;

    /// Whether every key and value this map removed (or replaced) has been dropped by now.
    /// A map that frees them later (epoch-based reclamation) returns `false` unless it can
    /// free them all here; drop-count checks are then only exact once the map is dropped.
    fn removed_entries_dropped(&self) -> bool {
        true
    }

    /// Drops what this thread removed or replaced as soon as no reader can see it (at once when
    /// no guard of the map is held anywhere); nothing to do for a map that drops it at once.
    fn flush_removed(&self) {}

    fn try_reserve(&self, additional: usize) -> Result<(), TryReserveError>;
}

/// A map type, generic over its keys and values, so one test can run on every map type.
pub trait Family: 'static {
    type Map<K: Key, V: Value>: ConcurrentMap<K, V>;
}

/// Implements [`ConcurrentMap`] for `$map<K, V>` by calling its inherent methods of the same
/// names; `$build` makes a map from `(shards, capacity)`.
macro_rules! forward_concurrent_map {
    ($map:ident, $name:literal, $build:expr $(, { $($extra:item)* })?) => {
        impl<K, V, S> ConcurrentMap<K, V> for $map<K, V, S>
        where
            K: Key,
            V: Value,
            S: BuildHasher + Default + Clone + Send + Sync + 'static,
        {
            const NAME: &'static str = $name;

            fn with_layout(shards: usize, capacity: usize) -> Self {
                let build: fn(usize, usize) -> Self = $build;
                build(shards, capacity)
            }
            fn get<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> Option<V> {
                $map::get(self, key)
            }
            fn get_with<Q: Hash + Equivalent<K> + ?Sized, R>(
                &self,
                key: &Q,
                f: impl FnOnce(&V) -> R,
            ) -> Option<R> {
                $map::get_with(self, key, f)
            }
            fn get_key_value<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> Option<(K, V)> {
                $map::get_key_value(self, key)
            }
            fn contains_key<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> bool {
                $map::contains_key(self, key)
            }
            fn insert(&self, key: K, value: V) -> Option<V> {
                $map::insert(self, key, value)
            }
            fn remove<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> Option<V> {
                $map::remove(self, key)
            }
            fn remove_entry<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> Option<(K, V)> {
                $map::remove_entry(self, key)
            }
            fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> V {
                $map::get_or_insert_with(self, key, make)
            }
            fn update<Q: Hash + Equivalent<K> + ?Sized, R>(
                &self,
                key: &Q,
                f: impl FnOnce(&mut V) -> R,
            ) -> Option<R> {
                $map::update(self, key, f)
            }
            fn upsert(&self, key: K, insert: impl FnOnce() -> V, update: impl FnOnce(&mut V)) {
                $map::upsert(self, key, insert, update)
            }
            fn compute(&self, key: K, f: impl FnOnce(Option<&V>) -> Op<V>) -> Computed<V> {
                $map::compute(self, key, f)
            }
            fn remove_if<Q: Hash + Equivalent<K> + ?Sized>(
                &self,
                key: &Q,
                f: impl FnOnce(&V) -> bool,
            ) -> Option<V> {
                $map::remove_if(self, key, f)
            }
            fn compare_exchange<Q: Hash + Equivalent<K> + ?Sized>(
                &self,
                key: &Q,
                current: &V,
                new: V,
            ) -> Result<V, CompareExchangeError<V>> {
                $map::compare_exchange(self, key, current, new)
            }
            fn swap<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q, value: V) -> Result<V, V> {
                $map::swap(self, key, value)
            }
            fn retain(&self, mut f: impl FnMut(&K, &V) -> bool) {
                $map::retain(self, move |k, v| f(k, v))
            }
            fn clear(&self) {
                $map::clear(self)
            }
            fn len(&self) -> usize {
                $map::len(self)
            }
            fn is_empty(&self) -> bool {
                $map::is_empty(self)
            }
            fn for_each(&self, f: impl FnMut(&K, &V)) {
                $map::for_each(self, f)
            }
            fn iter(&self) -> Box<dyn Iterator<Item = (K, V)> + '_> {
                Box::new($map::iter(self))
            }
            fn try_reserve(&self, additional: usize) -> Result<(), TryReserveError> {
                $map::try_reserve(self, additional)
            }
            $($($extra)*)?
        }
    };
}

forward_concurrent_map!(
    ShardedMap,
    "ShardedMap",
    |shards, capacity| {
        ShardedMapBuilder::new()
            .shards(shards)
            .capacity(capacity)
            .hasher(S::default())
            .build()
    },
    {
        fn retain_mut(&self, f: impl FnMut(&K, &mut V) -> bool) -> bool {
            ShardedMap::retain(self, f);
            true
        }
    }
);

forward_concurrent_map!(
    HashMap,
    "HashMap",
    |shards, capacity| HashMap::with_shards(shards, capacity, S::default()),
    {
        const CALLBACKS_MAY_READ: bool = true;

        fn removed_entries_dropped(&self) -> bool {
            // Removed entries are freed by memory reclamation, later.
            false
        }

        fn flush_removed(&self) {
            HashMap::flush_removed(self)
        }
    }
);

/// [`HashMap`] (lock-free reads) with the default hasher.
pub struct Lockfree;

impl Family for Lockfree {
    type Map<K: Key, V: Value> = HashMap<K, V>;
}

/// [`ShardedMap`] with the default hasher.
pub struct Sharded;

impl Family for Sharded {
    type Map<K: Key, V: Value> = ShardedMap<K, V>;
}

/// Instantiates generic test functions (`fn name<F: Family>()`) as `#[test]`s, one module per
/// map type (`sharded::name`, `hash_map::name`, ...).
///
/// `map_tests!(a, b, c)` runs each on every map type; tests listed after `sharded_only:` run on
/// `ShardedMap` alone (behaviour the other maps do not promise, or known failures of another
/// map, each with a comment at the call site).
macro_rules! map_tests {
    ($($test:ident),* $(,)? $(; sharded_only: $($only:ident),* $(,)?)?) => {
        mod sharded {
            $(
                #[test]
                fn $test() {
                    super::$test::<crate::common::Sharded>();
                }
            )*
            $($(
                #[test]
                fn $only() {
                    super::$only::<crate::common::Sharded>();
                }
            )*)?
        }
        mod hash_map {
            $(
                #[test]
                fn $test() {
                    super::$test::<crate::common::Lockfree>();
                }
            )*
        }
    };
}
pub(crate) use map_tests;

/// A generous bound for work that takes milliseconds; only a deadlock comes near it.
pub const HANG_BOUND: Duration = Duration::from_secs(30);

/// Runs `body` on its own thread and returns its result, failing the test (instead of hanging
/// the test run) if it has not finished within [`HANG_BOUND`]. A panic in `body` is passed on
/// to the caller.
pub fn run_bounded<T: Send + 'static>(what: &str, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let result = body();
        // The receiver may have given up already; nothing to do then.
        let _ = done.send(());
        result
    });
    match finished.recv_timeout(HANG_BOUND) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(result) => result,
            // A new panic on the test's thread, so the message is printed even if the worker
            // thread had quiet panics.
            Err(panic) => panic!("{what}: {}", panic_message(&*panic)),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: did not finish within {HANG_BOUND:?}; the map is probably deadlocked")
        }
    }
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// From now on, this thread's expected panics (lanemap's re-entrancy panics and the planned
/// panics of [`tracked`]) print nothing; any other panic prints as usual. Hundreds of expected
/// panics would otherwise flood the output of a failing run (and be slow with backtraces on).
pub fn quiet_expected_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = panic_message(info.payload());
            let expected =
                message.starts_with("lanemap: `") || message.starts_with(tracked::PLANNED);
            if !(expected && QUIET.with(Cell::get)) {
                default(info);
            }
        }));
    });
    QUIET.with(|quiet| quiet.set(true));
}

/// The text of a caught panic.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "<panic with a non-string payload>".to_owned()
    }
}

/// Runs `f`, which must panic, and returns the panic's message.
pub fn expect_panic<R>(what: &str, f: impl FnOnce() -> R) -> String {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(_) => panic!("{what}: expected a panic, but the call returned"),
        Err(panic) => panic_message(&*panic),
    }
}

/// `n` scaled down under Miri (where everything is ~1000x slower), or up by the
/// `LANEMAP_STRESS_SCALE` environment variable for long local runs.
pub fn scaled(n: usize) -> usize {
    if cfg!(miri) {
        return (n / 64).max(4);
    }
    let factor = std::env::var("LANEMAP_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok());
    n * factor.unwrap_or(1)
}

/// The map's contents, sorted, as read by `iter`.
pub fn sorted_entries<K: Key + Ord, V: Value, M: ConcurrentMap<K, V>>(map: &M) -> Vec<(K, V)> {
    let mut entries: Vec<(K, V)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}
