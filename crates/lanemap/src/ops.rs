//! The vocabulary of [`compute`](crate::ShardedMap::compute), shared by every map in the crate.

/// What a [`compute`](crate::ShardedMap::compute) closure asks the map to do with the key.
///
/// # Examples
/// ```
/// use lanemap::{Computed, Op, ShardedMap};
///
/// let stock: ShardedMap<&str, u32> = ShardedMap::new();
/// stock.insert("apples", 1);
/// // Take one apple; delete the key when the last one goes.
/// let taken = stock.compute("apples", |count| match count {
///     Some(1) => Op::Remove,
///     Some(n) => Op::Set(n - 1),
///     None => Op::Keep,
/// });
/// assert_eq!(taken, Computed::Removed(1));
/// assert!(stock.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op<V> {
    /// Leave the map as it is: an absent key stays absent, a present value stays.
    Keep,
    /// Insert the value, or replace the present one.
    Set(V),
    /// Remove the key if it is present.
    Remove,
}

/// What a [`compute`](crate::ShardedMap::compute) call did.
///
/// # Examples
/// ```
/// use lanemap::{Computed, Op, ShardedMap};
///
/// let map: ShardedMap<u32, u32> = ShardedMap::new();
/// assert_eq!(map.compute(1, |_| Op::Set(10)), Computed::Inserted);
/// assert_eq!(map.compute(1, |v| Op::Set(v.unwrap() + 1)), Computed::Replaced(10));
/// assert_eq!(map.compute(1, |_| Op::Keep), Computed::Unchanged);
/// assert_eq!(map.compute(1, |_| Op::Remove), Computed::Removed(11));
/// assert_eq!(map.compute(1, |_| Op::Remove), Computed::Unchanged);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use = "a compute result says whether the map changed"]
pub enum Computed<V> {
    /// Nothing changed: the closure returned [`Op::Keep`], or [`Op::Remove`] for an absent key.
    Unchanged,
    /// The key was absent and now holds the value the closure gave.
    Inserted,
    /// The key was present; this is the value the closure's new one replaced.
    Replaced(V),
    /// The key was present and is now gone; this is the value it had.
    Removed(V),
}
