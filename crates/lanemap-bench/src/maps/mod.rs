//! The adapter layer: one trait every measured map implements, and the registry of maps.
//!
//! Adding a map takes two steps: implement [`BenchMap`] (and a [`MapHandle`]) for a wrapper
//! type generic over the value `V` and the hasher `S`, then add one [`entry!`] line to
//! [`registry`]. The runner, reports and advisor pick it up from there.

mod dashmap;
mod flurry;
mod lanemap;
mod limit;
mod locked;
mod papaya;
mod scc;

use crate::runner::{Outcome, Task};
use crate::value::{Bytes64, Value};
use serde::Serialize;
use std::hash::BuildHasher;

/// Where a map stands in the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// One of lanemap's own maps: the subject of the comparison.
    Lanemap,
    /// Another crate's map, or std behind a lock.
    Peer,
    /// The single-threaded, unsynchronised `hashbrown::HashMap`: the ceiling.
    Limit,
}

/// How a map is built for one trial.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildConfig {
    /// Entries to make room for up front (0: start empty, not presized).
    pub capacity: usize,
    /// Shard count for sharded maps; `None` keeps the map's own default.
    pub shards: Option<usize>,
}

/// The operations the benchmark runs, through a per-thread handle.
///
/// Keys are `u64`. A handle lives on one thread for a whole trial, so maps that pin an epoch or
/// hold a guard can keep it here.
pub trait MapHandle<V> {
    /// Looks `key` up; returns the first word of the value so the read cannot be optimised away.
    fn get(&mut self, key: u64) -> Option<u64>;
    /// Inserts or replaces the value for `key`.
    fn insert(&mut self, key: u64, value: V);
    /// Removes `key`; `true` if it was present.
    fn remove(&mut self, key: u64) -> bool;
    /// Changes the value for `key` if present (a read-modify-write); `true` if it was present.
    fn update(&mut self, key: u64) -> bool;
    /// Called every few hundred operations: a handle holding a guard re-pins it here.
    fn tick(&mut self) {}
}

/// A concurrent map under test, shared by every thread of a trial.
pub trait BenchMap<V: Value>: Send + Sync + Sized {
    /// The per-thread handle.
    type Handle<'a>: MapHandle<V>
    where
        Self: 'a;
    /// Builds an empty map.
    fn build(config: &BuildConfig) -> Self;
    /// A handle for the calling thread.
    fn handle(&self) -> Self::Handle<'_>;
}

/// The hasher every map uses unless `--hasher default`: foldhash with a fixed seed, so that
/// no map wins by hashing faster and runs are repeatable.
pub type Fold = foldhash::fast::FixedState;

/// The bound on hashers the adapters accept.
pub trait Hasher: BuildHasher + Default + Clone + Send + Sync + 'static {}
impl<S: BuildHasher + Default + Clone + Send + Sync + 'static> Hasher for S {}

/// Runs one [`Task`] on one map type.
pub type Runner = fn(&Task<'_>) -> Outcome;

/// The four monomorphised runners of a map: {foldhash, crate default} × {u64, 64-byte value}.
#[derive(Debug, Clone, Copy)]
pub struct Runners {
    /// foldhash, `u64` values.
    pub fold_u64: Runner,
    /// The crate's default hasher, `u64` values.
    pub default_u64: Runner,
    /// foldhash, 64-byte values.
    pub fold_b64: Runner,
    /// The crate's default hasher, 64-byte values.
    pub default_b64: Runner,
}

/// One map in the registry.
#[derive(Debug, Clone)]
pub struct MapEntry {
    /// The name printed in reports.
    pub name: String,
    /// Lanemap, peer or limit.
    pub family: Family,
    /// The default hasher's name, for the report.
    pub default_hasher: &'static str,
    /// A shard count to force (used by the advisor to compare settings).
    pub shards: Option<usize>,
    /// The code that measures it.
    pub runners: Runners,
}

impl MapEntry {
    /// The runner for a hasher and value choice.
    pub fn runner(&self, default_hasher: bool, value_bytes: usize) -> Runner {
        match (default_hasher, value_bytes == Bytes64::BYTES) {
            (false, false) => self.runners.fold_u64,
            (true, false) => self.runners.default_u64,
            (false, true) => self.runners.fold_b64,
            (true, true) => self.runners.default_b64,
        }
    }
}

/// Builds a [`MapEntry`] from a name, a [`Family`], an adapter type generic over `<V, S>` and
/// the crate's default hasher type.
macro_rules! entry {
    ($name:expr, $family:expr, $adapter:ident, $default:ty) => {
        MapEntry {
            name: String::from($name),
            family: $family,
            default_hasher: std::any::type_name::<$default>(),
            shards: None,
            runners: Runners {
                fold_u64: crate::runner::run::<$adapter<u64, Fold>, u64>,
                default_u64: crate::runner::run::<$adapter<u64, $default>, u64>,
                fold_b64: crate::runner::run::<$adapter<Bytes64, Fold>, Bytes64>,
                default_b64: crate::runner::run::<$adapter<Bytes64, $default>, Bytes64>,
            },
        }
    };
}

/// Every map the benchmark knows, lanemap's first, the limit last.
pub fn registry() -> Vec<MapEntry> {
    use self::dashmap::Dash;
    use self::flurry::Flurry;
    use self::lanemap::{LockFree, LockFreePinned, Sharded};
    use self::limit::Limit;
    use self::locked::{MutexStd, PlRwLockHashbrown, RwLockStd};
    use self::papaya::{PapayaGuard, PapayaPin};
    use self::scc::Scc;
    use std::collections::hash_map::RandomState as Sip;
    vec![
        entry!(
            "lanemap ShardedMap",
            Family::Lanemap,
            Sharded,
            ::lanemap::DefaultHashBuilder
        ),
        entry!(
            "lanemap HashMap",
            Family::Lanemap,
            LockFree,
            ::lanemap::DefaultHashBuilder
        ),
        entry!(
            "lanemap HashMap (pinned per thread)",
            Family::Lanemap,
            LockFreePinned,
            ::lanemap::DefaultHashBuilder
        ),
        entry!("dashmap", Family::Peer, Dash, Sip),
        entry!("papaya (pin per op)", Family::Peer, PapayaPin, Sip),
        entry!("papaya (guard per thread)", Family::Peer, PapayaGuard, Sip),
        entry!("scc HashMap", Family::Peer, Scc, Sip),
        entry!("flurry", Family::Peer, Flurry, ::flurry::DefaultHashBuilder),
        entry!("std RwLock<HashMap>", Family::Peer, RwLockStd, Sip),
        entry!("std Mutex<HashMap>", Family::Peer, MutexStd, Sip),
        entry!(
            "parking_lot RwLock<hashbrown>",
            Family::Peer,
            PlRwLockHashbrown,
            ::hashbrown::DefaultHashBuilder
        ),
        entry!(
            "limit: hashbrown, 1 thread",
            Family::Limit,
            Limit,
            ::hashbrown::DefaultHashBuilder
        ),
    ]
}

/// The registry entries whose names contain one of `filters` (case-insensitive), in registry
/// order; all of them for an empty filter list. The limit is always kept, since every ratio
/// needs it.
pub fn select(filters: &[String]) -> Vec<MapEntry> {
    registry()
        .into_iter()
        .filter(|entry| {
            entry.family == Family::Limit
                || filters.is_empty()
                || filters
                    .iter()
                    .any(|f| entry.name.to_lowercase().contains(&f.to_lowercase()))
        })
        .collect()
}
