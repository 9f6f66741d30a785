//! Concurrent hash maps for every workload, behind one set of method names, with an API that
//! cannot deadlock.
//!
//! | map | pick it for | reads | writes |
//! |---|---|---|---|
//! | [`ShardedMap`] | write-heavy and mixed work | shard read lock | shard write lock, entries inline, no allocation |
//! | [`HashMap`] | read-heavy work, hot keys, many reader threads | no lock, no shared store, never wait | shard lock, one allocation per insert or change |
//!
//! Both have the same method names and meanings, so switching is a one-line change (where
//! `HashMap` hands back an old value it returns a clone, so some methods ask `V: Clone` there).
//!
//! # Usage
//!
//! ```
//! use lanemap::{Op, ShardedMap};
//! use std::sync::Arc;
//! use std::thread;
//!
//! let users: Arc<ShardedMap<u64, String>> = Arc::new(ShardedMap::new());
//! let workers: Vec<_> = (0..4u64)
//!     .map(|t| {
//!         let users = Arc::clone(&users);
//!         thread::spawn(move || {
//!             for id in t * 100..(t + 1) * 100 {
//!                 users.insert(id, format!("user-{id}"));
//!             }
//!         })
//!     })
//!     .collect();
//! for worker in workers {
//!     worker.join().unwrap();
//! }
//! assert_eq!(users.len(), 400);
//! assert_eq!(users.get(&7).as_deref(), Some("user-7"));
//! // Read in place without cloning:
//! assert_eq!(users.get_with(&7, |name| name.len()), Some(6));
//! // Change in place, atomically:
//! users.update(&7, |name| name.push_str("-admin"));
//! // Decide from the current value, atomically:
//! users.compute(8, |current| match current {
//!     Some(_) => Op::Remove,
//!     None => Op::Keep,
//! });
//! assert!(!users.contains_key(&8));
//! ```
//!
//! # The callback rule: no guards, no deadlocks
//!
//! No method returns a lock guard. Reads return clones ([`get`](ShardedMap::get)) or run your
//! closure on the value in place ([`get_with`](ShardedMap::get_with),
//! [`update`](ShardedMap::update), [`compute`](ShardedMap::compute), ...). A closure runs while
//! part of the map is locked, so it **must not call the same map**. lanemap checks this: a call
//! from inside a closure (or from a key's or value's `Eq`, `Clone`, `Debug` or `Drop` run by the
//! map) back into the same map panics at once with a message naming both methods, rather than
//! deadlocking. Calling a *different* map from a closure is fine.
//!
//! ```should_panic
//! use lanemap::ShardedMap;
//!
//! let map: ShardedMap<u32, u32> = ShardedMap::new();
//! map.insert(1, 1);
//! // Panics: "`ShardedMap::insert` was called on a map from code running inside
//! // `ShardedMap::update` on the same map ..."
//! map.update(&1, |v| {
//!     map.insert(2, *v);
//! });
//! ```
//!
//! Return what you need from the closure and make the second call afterwards. Since nothing
//! holds a lock across an `.await`, the maps are safe to use from async code as they are.
//!
//! [`HashMap`] reads take no lock at all, so the closures of its reads
//! ([`get_with`](HashMap::get_with), [`for_each`](HashMap::for_each), iteration) may call the
//! map; the closures of its writes run under a shard lock and follow the rule above.
//!
//! # Panics in your code leave the map usable
//!
//! A panic in `Hash`, `Eq`, `Clone`, `Drop` or a closure unwinds through the map without leaving
//! a lock held (the locks do not poison) and without breaking the table: no entry is lost,
//! duplicated, dropped twice or leaked. [`ShardedMap`] keeps each key's full hash next to it, so
//! growing a table never calls `Hash` again. [`HashMap`] does not (its entries are smaller for
//! it) and hashes the keys it moves to a larger or smaller table, as `std`'s map does when it
//! grows: a panic there comes out of the write that was doing the move, with every entry still
//! in one of the two tables, and the next write carries on from where it stopped. What a panicking closure had already done to a value in
//! place ([`ShardedMap::update`], [`ShardedMap::retain`]) stays done; [`HashMap::update`] runs
//! its closure on a copy, so there a panic keeps the old value.
//!
//! [`HashMap`] drops removed and replaced entries later, when no reader can see them any more
//! (see [Memory](#memory-hashmap)), on whichever thread ends the last guard. A panic in such a
//! deferred `Drop` is caught and discarded, since it would otherwise tear through unrelated
//! code; the entry's memory is freed all the same.
//!
//! # Consistency
//!
//! Every single-key operation is linearizable: it takes effect atomically at one instant
//! between its call and its return, and all threads agree on the order. That includes the
//! compound ones: [`get_or_insert_with`](ShardedMap::get_or_insert_with),
//! [`update`](ShardedMap::update), [`upsert`](ShardedMap::upsert),
//! [`compute`](ShardedMap::compute), [`remove_if`](ShardedMap::remove_if),
//! [`compare_exchange`](ShardedMap::compare_exchange) and [`swap`](ShardedMap::swap): no other
//! write to the same key can come between their read and their write.
//!
//! "Before" and "after" between threads mean what Rust's memory model means: a call that
//! happens after another's return (through a channel, a join, a lock or atomic the two threads
//! share) sees its effect. A thread that only reads a clock afterwards may, for a few
//! nanoseconds, not: a [`HashMap`] write ends with a plain store (its shard's unlock), which can
//! wait in its core's store buffer until the core next synchronizes.
//!
//! Whole-map operations are *not* atomic snapshots; they visit one shard at a time:
//!
//! - [`len`](ShardedMap::len) and [`is_empty`](ShardedMap::is_empty) add up per-shard counters
//!   without locking: exact when no write is in flight, otherwise a value the count passed close
//!   to during the call.
//! - [`clear`](ShardedMap::clear), [`retain`](ShardedMap::retain),
//!   [`shrink_to_fit`](ShardedMap::shrink_to_fit) and [`try_reserve`](ShardedMap::try_reserve)
//!   act on each shard atomically, one after another.
//!
//! ## Iteration
//!
//! [`iter`](ShardedMap::iter), [`keys`](ShardedMap::keys), [`values`](ShardedMap::values),
//! [`for_each`](ShardedMap::for_each), `Debug` and `Clone` visit the shards one at a time, each
//! under its read lock, so while other threads write:
//!
//! - an entry present and unchanged for the whole iteration is seen exactly once;
//! - no entry is seen twice, and each entry is seen with a value it really had;
//! - an entry inserted, changed or removed during the iteration may or may not be seen, or seen
//!   with its old or its new value;
//! - two entries in different shards may be seen as of different moments.
//!
//! `iter`, `keys` and `values` copy each shard out when they reach it and hold no lock between
//! items, so the loop body may call the map; `for_each` holds the shard's read lock while its
//! closure runs.
//!
//! [`HashMap`] walks its tables without locking, while writers and table migrations go on:
//!
//! - a key present for the whole walk is seen exactly once, even if its value changes meanwhile
//!   (with its old value or its new one), so a loop may update every entry it is shown;
//! - each entry is seen with a value it really had;
//! - an entry inserted or removed during the walk may or may not be seen;
//! - a key removed *and inserted again* while the walk runs may be seen twice (once per life),
//!   as with Java's `ConcurrentHashMap`. Deduplicate if your loop cannot allow that.
//!
//! # Memory (HashMap)
//!
//! A [`HashMap`] stores its entries inline in its tables, and a reader may still be looking at
//! an entry that a writer has just replaced or removed. So an entry's slot is never written
//! over while a reader could hold it: a change of value writes the new entry into another slot,
//! and the old slot, like a removed entry's, is reused only after a grace period of
//! [seize](https://docs.rs/seize)'s reclamation: once every guard that was active when the slot
//! was vacated has ended. Keys and values that need dropping are dropped after the same grace
//! period. A read without a pin enters and leaves a guard by itself (seize's exit is an atomic
//! swap: a full barrier on x86, so lookups in a loop are faster through one pin). A write
//! without a pin enters none: under its shard's lock it reaches only what that shard owns, and
//! only the lock's holder retires that, so any value it hands back is cloned before the lock is
//! released. [`HashMap::pin`] keeps a guard for as long as the handle lives, so
//! [refresh](HashMapRef::refresh) long-lived pins regularly: a pin held for long keeps vacated
//! slots from being reused, and the table then migrates into a fresh one sooner.
//! Removed keys and values wait in their shard until 32 have gathered, and then in the removing
//! thread's reclamation batch (32 objects: such groups, and groups of vacated slots; so up to
//! about 1 000 entries);
//! [`HashMap::flush_removed`] hands both over at once, for values whose `Drop`
//! should not wait (open files, connections).
//! Tables shrink as entries are removed (and at once when a shard empties, or on
//! [`shrink_to_fit`](HashMap::shrink_to_fit)), so an emptied map gives its memory back.
//! Tables of 1 MiB and more are mapped straight from the operating system (on unix), and those
//! of 2 MiB and more are placed on 2 MiB boundaries (rounded up to whole 2 MiB where that costs
//! at most an eighth more) and ask Linux for transparent huge pages, which cut the cost of
//! address translation for lookups in large tables; see [`mapped_table_bytes`]. (Random gets
//! on 2^21 keys, 32 shards of 1.9 MiB tables: 8-11% faster with them.) A table sized up front
//! ([`with_capacity`](HashMap::with_capacity), [`try_reserve`](HashMap::try_reserve)) asks at
//! once, so the writes that fill it may each fault in a 2 MiB page, and when the kernel has no
//! free one it compacts memory right then (single inserts paused for up to 8 ms on the
//! development machine). A table that grows by itself asks only once its migration is over, so
//! that no insert pays for that: the kernel collapses its pages in the background later.
//!
//! On Linux, an outgrown or dropped table's pages are not unmapped at once: up to 64 MiB of them,
//! process-wide, are kept to build the next tables' entries from (moved with `mremap`, without
//! copying), as the system allocator keeps freed memory for the maps that allocate through it.
//! A fresh page costs a fault when first written (about 2.5 µs on the development machine); a
//! map growing to 2^21 entries faulted in 21 000 pages instead of 46 000, and the insert that
//! starts a migration pays for the moves instead (0.05-0.4 ms for the largest tables there).
//! [`pooled_table_bytes`] tells how much is kept, and [`release_pooled_table_pages`] gives it
//! back. See BENCHMARKS.md for the pauses measured while a map grows.
//!
//! # Async
//!
//! No method of either map blocks on anything but a short shard lock, and none returns a lock
//! guard. To hold [`HashMap`] references across an `.await` in a multi-threaded runtime, use
//! [`HashMap::pin_owned`]: its guard is `Send`.
//!
//! # Go's `sync.Map`, operation by operation
//!
//! | `sync.Map` | `ShardedMap` |
//! |---|---|
//! | `Load(k)` | [`get(&k)`](ShardedMap::get), or [`get_with(&k, f)`](ShardedMap::get_with) without a clone |
//! | `Store(k, v)` | [`insert(k, v)`](ShardedMap::insert) |
//! | `LoadOrStore(k, v)` | [`get_or_insert_with(k, \|\| v)`](ShardedMap::get_or_insert_with) |
//! | `LoadAndDelete(k)` | [`remove(&k)`](ShardedMap::remove) |
//! | `Delete(k)` | [`remove(&k)`](ShardedMap::remove) |
//! | `Swap(k, v)` | [`insert(k, v)`](ShardedMap::insert) (returns the previous value) |
//! | `CompareAndSwap(k, old, new)` | [`compare_exchange(&k, &old, new)`](ShardedMap::compare_exchange) |
//! | `CompareAndDelete(k, old)` | [`remove_if(&k, \|v\| *v == old)`](ShardedMap::remove_if) |
//! | `Range(f)` | [`for_each(f)`](ShardedMap::for_each), or [`iter()`](ShardedMap::iter) |
//! | `Clear()` | [`clear()`](ShardedMap::clear) |
//!
//! Beyond it: [`update`](ShardedMap::update), [`upsert`](ShardedMap::upsert),
//! [`compute`](ShardedMap::compute), [`swap`](ShardedMap::swap) (replace only if present, Java's
//! `replace`), [`retain`](ShardedMap::retain) and a cheap [`len`](ShardedMap::len).
//!
//! # Differences from std's `HashMap`
//!
//! - Every method takes `&self`. There is no `get_mut`, `entry` or `iter_mut`, since they would
//!   hand out references into a locked table; use [`update`](ShardedMap::update),
//!   [`upsert`](ShardedMap::upsert), [`compute`](ShardedMap::compute) and
//!   [`retain`](ShardedMap::retain) instead.
//! - [`get`](ShardedMap::get) returns a clone (`Option<V>`), not `Option<&V>`;
//!   [`get_with`](ShardedMap::get_with) reads in place.
//! - Lookups take any `Q: Hash + Equivalent<K>` ([`Equivalent`] is implemented for every
//!   `Q` that `K` borrows as), so `map.get("key")` works for `String` keys as in std.
//! - The default hasher is foldhash's randomly seeded [`DefaultHashBuilder`], which is much
//!   faster than std's SipHash and still varies from map to map. Keys crafted to collide under one
//!   map's seed do not collide under another's; any `BuildHasher` can be chosen instead.
//! - Iteration yields owned clones and is not a snapshot (see [Iteration](#iteration)).
//! - [`reserve`](ShardedMap::reserve) spreads the room over the shards: with evenly spread keys,
//!   that many inserts grow no shard.
//! - Removing entries gives memory back (std's tables never shrink by themselves): a
//!   [`ShardedMap`] shard that falls below an eighth full on a removal shrinks to twice its
//!   entries, but never below 128 slots or the room asked for with
//!   [`with_capacity`](ShardedMap::with_capacity) or [`reserve`](ShardedMap::reserve), or kept
//!   by [`clear`](ShardedMap::clear) (as in std); [`shrink_to_fit`](ShardedMap::shrink_to_fit)
//!   gives that room back too. [`HashMap`] tables shrink as they empty.
//! - [`HashMap`] only: entries are immutable once published, so methods that hand back an old
//!   value return a clone (`V: Clone`), and [`update`](HashMap::update) and
//!   [`upsert`](HashMap::upsert) change a copy and publish it. Reads by reference, without any
//!   clone, go through [`pin`](HashMap::pin). A change of value keeps the stored key, as std's
//!   `insert` does.
//! - [`HashMap`] only: [`clear`](HashMap::clear) and [`flush_removed`](HashMap::flush_removed)
//!   need `K: Hash + Eq` and `S: BuildHasher` (std's `clear` does not), and so does iterating,
//!   since both may finish a table's migration, or follow a key into the table it moved to.
//!
//! # Performance
//!
//! Each shard is a hashbrown SwissTable holding entries inline, padded to its own cache line,
//! behind a parking_lot reader-writer lock; one operation locks one shard, once. The shard is
//! chosen from hash bits the table does not use for its slots, so each shard's table stays evenly
//! filled. Writes allocate only when a shard grows. Reads take the read lock, an atomic
//! read-modify-write on the shard's lock word: on read-mostly work with several threads on a few
//! hot keys, that shared write limits scaling.
//!
//! The default shard count is `(4 × available_parallelism).next_power_of_two()`. More shards
//! lower contention between writers; fewer make whole-map operations cheaper.
//!
//! [`HashMap`] reads take no lock and store nothing: readers on many cores never contend, even
//! on one hot key. Its tables keep entries inline (key and value: 16 bytes for `u64 -> u64`;
//! a migration hashes the keys it moves), with one 8-byte control
//! word per 7 slots in an array of their own. A lookup starts loading its group's entries
//! together with the control word, so a hit in a table larger than the CPU's cache waits for
//! about one miss, where a table of pointers to entries (papaya's) waits for two in a row.
//! Writes lock one shard (by default `(16 × available_parallelism).next_power_of_two()` of
//! them, four times [`ShardedMap`]'s: reads never touch a shard's lock, and at 2 threads on 2
//! cores 32 shards wrote 1.27-1.28× as fast as 8), with a lock of its own whose release is a
//! plain store rather than an atomic read-modify-write: on x86 the latter waits for the
//! write's cache misses to drain, the former lets them drain while the next operation starts
//! (a waiter about to sleep pays instead, with Linux's `membarrier`; elsewhere both sides take
//! a full fence). A write starts loading its key's group before it takes the lock (the lock's
//! atomic instruction would otherwise wait for those loads), from addresses each shard keeps
//! of its newest table. Writes never call the allocator except to grow a table; vacated slots are
//! reused after their grace period (handed to reclamation 64 at a time, and taken back by one
//! write, which prefetches their control words together). A reused slot whose group still has
//! a never-used slot counts as never used again, so steady churn does not fill a table with
//! tombstones and migrate it (hashbrown does the same when it erases). On write-heavy mixes
//! at one thread on a cache-sized table, [`ShardedMap`] is still the better choice; in the
//! last full run (`BENCHMARKS.md`) [`HashMap`] wrote faster at two threads, and about as fast
//! at one thread on a table larger than the cache. Tables grow and shrink incrementally: a write moves at most 128 slot
//! positions of an outgrown table, so no single insert pays for copying a whole table, and a
//! new table's entries start on pages that freed tables left (see Memory above), or on fresh
//! ones that the kernel maps as the migration touches them.
//! `cargo run --release -p lanemap-bench` measures the maps against their peers on your machine.
//!
//! # Optional features
//!
//! - `serde`: `Serialize` and `Deserialize` for the maps (as a map).
//! - `rayon`: parallel extension and collection, and `ShardedMap::par_for_each`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod error;
mod hash_map;
mod key_match;
mod ops;
mod raw;
mod reclaim;
mod reentrancy;
mod sharded;
mod sync;

#[cfg(feature = "rayon")]
mod rayon_impls;
#[cfg(feature = "serde")]
mod serde_impls;

pub use equivalent::Equivalent;
pub use error::{CompareExchangeError, TryReserveError};
pub use hash_map::{HashMap, HashMapRef, PinnedIter};
pub use ops::{Computed, Op};
pub use reclaim::{Guard, LocalGuard, OwnedGuard};
pub use sharded::{IntoIter, Iter, Keys, ShardedMap, ShardedMapBuilder, Values};

/// Bytes that [`HashMap`] tables currently hold in memory mapped straight from the operating
/// system, process-wide: tables of 1 MiB and more, on unix. A counting global allocator does
/// not see them; add this to its figure for a map's full footprint. (Entries, and smaller
/// tables, come from the global allocator.)
///
/// # Examples
/// ```
/// use lanemap::HashMap;
///
/// // One shard with room for 2^16 entries: a table of 1 MiB.
/// let map: HashMap<u64, u64> = HashMap::with_shards(1, 1 << 16, Default::default());
/// if cfg!(unix) {
///     assert!(lanemap::mapped_table_bytes() >= 1 << 20);
/// }
/// drop(map);
/// ```
pub fn mapped_table_bytes() -> usize {
    raw::table::mapped_bytes()
}

/// Bytes of freed [`HashMap`] tables that lanemap keeps mapped, process-wide, to build its next
/// tables from (on Linux; elsewhere 0).
///
/// A table mapped from the operating system starts on fresh pages, and each fresh page costs a
/// fault the first time it is written. A growing map frees about as many pages as it takes (each
/// table it outgrows is half the size of the next), so freed tables' pages are kept, up to
/// 64 MiB, and moved (without copying) under the entries of the next tables that a growing map
/// makes (a table sized up front gets fresh pages, which can be huge ones). That is what the
/// system allocator does for the maps that allocate through it. These bytes are not counted by
/// [`mapped_table_bytes`]; [`release_pooled_table_pages`] gives them back.
///
/// # Examples
/// ```
/// assert!(lanemap::pooled_table_bytes() <= 64 << 20);
/// ```
pub fn pooled_table_bytes() -> usize {
    #[cfg(all(target_os = "linux", not(miri), not(loom)))]
    return raw::page_pool::pooled_bytes();
    #[cfg(not(all(target_os = "linux", not(miri), not(loom))))]
    0
}

/// Gives the pages of freed [`HashMap`] tables that lanemap keeps for reuse (see
/// [`pooled_table_bytes`]) back to the operating system now: for a program that has dropped its
/// large maps and will not grow new ones soon.
///
/// # Examples
/// ```
/// use lanemap::HashMap;
///
/// // One shard with room for 2^16 entries: a table of 1 MiB, whose pages are kept once freed.
/// let map: HashMap<u64, u64> = HashMap::with_shards(1, 1 << 16, Default::default());
/// drop(map);
/// lanemap::release_pooled_table_pages();
/// // (Other threads may be freeing tables too, so the pool may not stay empty.)
/// ```
pub fn release_pooled_table_pages() {
    #[cfg(all(target_os = "linux", not(miri), not(loom)))]
    raw::page_pool::release();
}

/// Iterators of [`HashMap`] (named apart from [`ShardedMap`]'s).
pub mod hash_map_iter {
    pub use crate::hash_map::{Iter, Keys, Values};
}

/// The default hasher: foldhash's fast hasher, randomly seeded per map.
///
/// # Examples
/// ```
/// use lanemap::{DefaultHashBuilder, ShardedMap};
///
/// let map: ShardedMap<u64, u64, DefaultHashBuilder> = ShardedMap::new();
/// map.insert(1, 1);
/// ```
pub type DefaultHashBuilder = foldhash::fast::RandomState;

/// The README's examples, compiled and run as doc-tests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
