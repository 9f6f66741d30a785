//! [`ShardedMapBuilder`]: shard count, capacity and hasher in one place.

use super::{MAX_SHARDS, ShardedMap, default_shard_count};
use crate::DefaultHashBuilder;

/// Configures a [`ShardedMap`] before it is built.
///
/// # Examples
/// ```
/// use lanemap::ShardedMap;
/// use std::collections::hash_map::RandomState;
///
/// let map: ShardedMap<String, u64, RandomState> = ShardedMap::builder()
///     .shards(64)
///     .capacity(100_000)
///     .hasher(RandomState::new())
///     .build();
/// assert_eq!(map.shard_count(), 64);
/// assert!(map.capacity() >= 100_000);
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ShardedMapBuilder<S = DefaultHashBuilder> {
    shards: Option<usize>,
    capacity: usize,
    hasher: S,
}

impl ShardedMapBuilder<DefaultHashBuilder> {
    /// A builder with the defaults: `(4 × available_parallelism).next_power_of_two()` shards, no
    /// preallocated capacity, a randomly seeded [`DefaultHashBuilder`].
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMapBuilder;
    ///
    /// let map: lanemap::ShardedMap<u8, u8> = ShardedMapBuilder::new().build();
    /// assert!(map.shard_count().is_power_of_two());
    /// ```
    pub fn new() -> Self {
        Self {
            shards: None,
            capacity: 0,
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl Default for ShardedMapBuilder<DefaultHashBuilder> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> ShardedMapBuilder<S> {
    /// Sets the number of shards, rounded up to a power of two.
    ///
    /// More shards mean less contention between writers and a little more memory and work for
    /// whole-map operations (`clear`, iteration, `capacity`).
    ///
    /// # Panics
    /// If `shards` is 0 or more than 65536.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u8, u8> = ShardedMap::builder().shards(3).build();
    /// assert_eq!(map.shard_count(), 4);
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        assert!(
            (1..=MAX_SHARDS).contains(&shards),
            "lanemap: a ShardedMap needs between 1 and {MAX_SHARDS} shards, not {shards}"
        );
        self.shards = Some(shards.next_power_of_two());
        self
    }

    /// Sets how many entries the map holds before any shard grows (with evenly spread keys).
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<u8, u8> = ShardedMap::builder().capacity(200).build();
    /// assert!(map.capacity() >= 200);
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets the hasher; any [`BuildHasher`](std::hash::BuildHasher) works.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    /// use std::hash::{BuildHasherDefault, DefaultHasher};
    ///
    /// let map: ShardedMap<u8, u8, BuildHasherDefault<DefaultHasher>> =
    ///     ShardedMap::builder().hasher(BuildHasherDefault::default()).build();
    /// map.insert(1, 1);
    /// assert_eq!(map.get(&1), Some(1));
    /// ```
    pub fn hasher<T>(self, hasher: T) -> ShardedMapBuilder<T> {
        ShardedMapBuilder {
            shards: self.shards,
            capacity: self.capacity,
            hasher,
        }
    }

    /// Builds the empty map.
    ///
    /// # Examples
    /// ```
    /// use lanemap::ShardedMap;
    ///
    /// let map: ShardedMap<&str, i32> = ShardedMap::builder().build();
    /// map.insert("x", 1);
    /// assert_eq!(map.len(), 1);
    /// ```
    pub fn build<K, V>(self) -> ShardedMap<K, V, S> {
        let shards = self.shards.unwrap_or_else(default_shard_count);
        ShardedMap::from_parts(shards, self.capacity, self.hasher)
    }
}
