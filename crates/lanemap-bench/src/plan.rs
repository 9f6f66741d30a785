//! What a run measures: the cases, thread counts, maps and settings.

use crate::maps::{Family, MapEntry, select};
use crate::workload::{Case, Dist, Workload};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// A cache-resident key count: 2^16 keys (about 1-2 MiB of table).
pub const CACHE_KEYS: usize = 1 << 16;
/// A DRAM-sized key count: 2^22 keys (64 MiB and more of table).
pub const DRAM_KEYS: usize = 1 << 22;

/// Everything a run needs to know.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// What kind of run this is ("quick comparison", "run", "advise").
    pub title: String,
    /// The command line that started it.
    pub command: String,
    /// Workload × distribution × key count.
    pub cases: Vec<Case>,
    /// Thread counts.
    pub threads: Vec<usize>,
    /// The maps, in registry order (the limit included).
    #[serde(serialize_with = "map_names")]
    pub maps: Vec<MapEntry>,
    /// Repetitions of every trial; maps are interleaved within each.
    pub reps: usize,
    /// Operations per trial, over all threads (growing workloads compute their own).
    pub ops: u64,
    /// Run each trial for this long instead of a fixed number of operations.
    pub duration: Option<Duration>,
    /// Value size in bytes: 8 or 64.
    pub value_bytes: usize,
    /// Use each crate's default hasher instead of foldhash.
    pub default_hasher: bool,
    /// Seed of the operation streams.
    pub seed: u64,
    /// Time one operation in this many.
    pub sample_every: usize,
    /// Inserts of the resize-pause trial (0 skips it).
    pub growth_inserts: u64,
    /// Entries of the memory trial (0 skips it).
    pub memory_entries: u64,
    /// Shard count forced on sharded maps (`None`: their defaults).
    pub shards: Option<usize>,
    /// Where the report files go.
    pub out_dir: PathBuf,
}

fn map_names<S: serde::Serializer>(maps: &[MapEntry], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(maps.iter().map(|m| &m.name))
}

impl Plan {
    /// The no-argument run: all maps on read-heavy, exchange, rapid-grow and Zipfian
    /// read-heavy, at 1 and 2 threads, on 2^19 keys (beyond the caches); under three minutes
    /// on two idle cores.
    pub fn quick(out_dir: PathBuf) -> Self {
        let presets = Workload::presets();
        let keys = 1 << 19;
        let mut cases: Vec<Case> = presets
            .iter()
            .map(|workload| Case {
                workload: workload.clone(),
                dist: Dist::Uniform,
                keys,
            })
            .collect();
        cases.push(Case {
            workload: presets[0].clone(),
            dist: Dist::Zipf { exponent: 0.99 },
            keys,
        });
        Self {
            title: "quick comparison".into(),
            command: "lanemap-bench".into(),
            cases,
            threads: vec![1, 2],
            maps: select(&[]),
            reps: 3,
            ops: 1_000_000,
            duration: None,
            value_bytes: 8,
            default_hasher: false,
            seed: 42,
            sample_every: 64,
            growth_inserts: 1 << 20,
            memory_entries: 1 << 19,
            shards: None,
            out_dir,
        }
    }

    /// Repetitions of the resize-pause trial: as many as the throughput trials, at most 3.
    pub fn growth_reps(&self) -> usize {
        self.reps.clamp(1, 3)
    }

    /// The number of trials the plan runs, for the progress bar.
    pub fn trial_count(&self) -> u64 {
        let contenders = self
            .maps
            .iter()
            .filter(|m| m.family != Family::Limit)
            .count();
        let has_limit = self.maps.iter().any(|m| m.family == Family::Limit);
        let per_block = contenders + usize::from(has_limit);
        let throughput = self.cases.len() * self.threads.len() * self.reps * per_block;
        let growth = if self.growth_inserts > 0 {
            self.maps.len() * self.growth_reps()
        } else {
            0
        };
        let memory = if self.memory_entries > 0 {
            self.maps.len()
        } else {
            0
        };
        (throughput + growth + memory) as u64
    }
}

/// The cores the process may use (what "ideal" multiplies the limit by, at most).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
