//! What a run measured, and the summaries computed from it: medians, spreads and ratios.

use crate::latency::{OpHistograms, Percentiles, new_histogram};
use crate::maps::Family;
use crate::stream::OpKind;
use crate::workload::Case;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles of a row, per operation type and over all of them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LatencySummary {
    /// Lookups.
    pub get: Option<Percentiles>,
    /// Inserts.
    pub insert: Option<Percentiles>,
    /// Removals.
    pub remove: Option<Percentiles>,
    /// Updates.
    pub update: Option<Percentiles>,
    /// All sampled operations.
    pub all: Option<Percentiles>,
}

impl LatencySummary {
    fn of(histograms: &OpHistograms) -> Self {
        Self {
            get: histograms.percentiles(OpKind::Get),
            insert: histograms.percentiles(OpKind::Insert),
            remove: histograms.percentiles(OpKind::Remove),
            update: histograms.percentiles(OpKind::Update),
            all: histograms.all(),
        }
    }

    /// The percentiles of one operation type.
    pub fn of_kind(&self, kind: OpKind) -> Option<Percentiles> {
        match kind {
            OpKind::Get => self.get,
            OpKind::Insert => self.insert,
            OpKind::Remove => self.remove,
            OpKind::Update => self.update,
        }
    }
}

/// One map's figures in one block.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Map name.
    pub map: String,
    /// Lanemap, peer or limit.
    pub family: Family,
    /// Threads this row ran with (1 for the limit).
    pub threads: usize,
    /// Throughput of each repetition, in millions of operations per second.
    pub mops: Vec<f64>,
    /// Median of `mops`.
    pub median: f64,
    /// Smallest of `mops`.
    pub min: f64,
    /// Largest of `mops`.
    pub max: f64,
    /// Median throughput over the best peer's median (1.0 = as fast as the best peer).
    pub vs_best_peer: Option<f64>,
    /// Smallest and largest per-repetition ratio to the best peer in the same repetition.
    pub vs_best_peer_spread: Option<(f64, f64)>,
    /// Median throughput over the ideal (the limit × min(threads, cores)).
    pub vs_ideal: Option<f64>,
    /// Sampled latencies, all repetitions together.
    pub latency: LatencySummary,
    #[serde(skip)]
    histograms: OpHistograms,
}

/// All maps on one case at one thread count.
#[derive(Debug, Clone, Serialize)]
pub struct Block {
    /// The workload, distribution and key count.
    pub case: Case,
    /// Thread count of the contenders.
    pub threads: usize,
    /// The ideal's multiplier: min(threads, cores).
    pub ideal_factor: usize,
    /// The ideal throughput: the limit's median × `ideal_factor` (Mop/s).
    pub ideal: Option<f64>,
    /// The best peer's name.
    pub best_peer: Option<String>,
    /// One row per map, in registry order.
    pub rows: Vec<Row>,
}

impl Block {
    /// An empty block.
    pub fn new(case: Case, threads: usize, cores: usize) -> Self {
        Self {
            case,
            threads,
            ideal_factor: threads.min(cores),
            ideal: None,
            best_peer: None,
            rows: Vec::new(),
        }
    }

    /// Records one trial.
    pub fn record(
        &mut self,
        map: &str,
        family: Family,
        threads: usize,
        mops: f64,
        histograms: &OpHistograms,
    ) {
        let row = match self.rows.iter().position(|r| r.map == map) {
            Some(i) => &mut self.rows[i],
            None => {
                self.rows.push(Row {
                    map: map.into(),
                    family,
                    threads,
                    mops: Vec::new(),
                    median: 0.0,
                    min: 0.0,
                    max: 0.0,
                    vs_best_peer: None,
                    vs_best_peer_spread: None,
                    vs_ideal: None,
                    latency: LatencySummary::default(),
                    histograms: OpHistograms::default(),
                });
                self.rows.last_mut().expect("just pushed")
            }
        };
        row.mops.push(mops);
        row.histograms.merge(histograms);
    }

    /// Computes medians, spreads and ratios from the recorded trials.
    pub fn summarize(&mut self) {
        for row in &mut self.rows {
            let mut sorted = row.mops.clone();
            sorted.sort_by(f64::total_cmp);
            row.median = median(&sorted);
            row.min = sorted.first().copied().unwrap_or(0.0);
            row.max = sorted.last().copied().unwrap_or(0.0);
            row.latency = LatencySummary::of(&row.histograms);
        }
        let limit = self
            .rows
            .iter()
            .find(|r| r.family == Family::Limit)
            .map(|r| r.median);
        self.ideal = limit.map(|l| l * self.ideal_factor as f64);
        let best = self
            .rows
            .iter()
            .filter(|r| r.family == Family::Peer)
            .max_by(|a, b| a.median.total_cmp(&b.median))
            .map(|r| (r.map.clone(), r.median, r.mops.clone()));
        self.best_peer = best.as_ref().map(|b| b.0.clone());
        for row in &mut self.rows {
            row.vs_ideal = self.ideal.filter(|&i| i > 0.0).map(|i| row.median / i);
            if let Some((_, best_median, best_reps)) = &best {
                row.vs_best_peer = (*best_median > 0.0).then(|| row.median / best_median);
                let per_rep: Vec<f64> = row
                    .mops
                    .iter()
                    .zip(best_reps)
                    .filter(|(_, b)| **b > 0.0)
                    .map(|(m, b)| m / b)
                    .collect();
                row.vs_best_peer_spread = per_rep
                    .iter()
                    .copied()
                    .reduce(f64::min)
                    .zip(per_rep.iter().copied().reduce(f64::max));
            }
        }
    }
}

/// The median of sorted values (the mean of the middle two for an even count); 0 when empty.
pub fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// One map's resize-pause trials.
#[derive(Debug, Clone, Serialize)]
pub struct GrowthRow {
    /// Map name.
    pub map: String,
    /// Lanemap, peer or limit.
    pub family: Family,
    /// Inserts into the initially empty, not presized map.
    pub inserts: u64,
    /// Millions of inserts per second over the whole growth, per repetition (every insert is
    /// timed, so this is lower than a plain insert loop).
    pub mops: Vec<f64>,
    /// The worst insert of each repetition, in nanoseconds.
    pub worst_per_rep: Vec<u64>,
    /// The median of `worst_per_rep`: the pause a resize causes, with most preemptions
    /// filtered out.
    pub worst_median: u64,
    /// Insert latency percentiles over all repetitions (every insert timed), in nanoseconds.
    pub latency: Percentiles,
    /// `worst_median` over the limit's.
    pub worst_vs_limit: Option<f64>,
    #[serde(skip)]
    histogram: Option<Histogram<u64>>,
}

impl GrowthRow {
    /// A row from a first repetition.
    pub fn new(
        map: &str,
        family: Family,
        inserts: u64,
        mops: f64,
        latency: Histogram<u64>,
    ) -> Self {
        let mut row = Self {
            map: map.into(),
            family,
            inserts,
            mops: Vec::new(),
            worst_per_rep: Vec::new(),
            worst_median: 0,
            latency: Percentiles {
                samples: 0,
                p50: 0,
                p99: 0,
                p999: 0,
                max: 0,
            },
            worst_vs_limit: None,
            histogram: None,
        };
        row.record(mops, &latency);
        row
    }

    /// Adds a repetition.
    pub fn record(&mut self, mops: f64, latency: &Histogram<u64>) {
        self.mops.push(mops);
        self.worst_per_rep.push(latency.max());
        let mut worst = self.worst_per_rep.clone();
        worst.sort_unstable();
        self.worst_median = worst[worst.len() / 2];
        let histogram = self.histogram.get_or_insert_with(new_histogram);
        histogram
            .add(latency)
            .expect("histograms share their bounds");
        self.latency = Percentiles::of(histogram).unwrap_or(self.latency);
    }

    /// The median insert rate over the repetitions.
    pub fn median_mops(&self) -> f64 {
        let mut sorted = self.mops.clone();
        sorted.sort_by(f64::total_cmp);
        median(&sorted)
    }
}

/// One map's memory trial.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryRow {
    /// Map name.
    pub map: String,
    /// Lanemap, peer or limit.
    pub family: Family,
    /// Entries inserted.
    pub entries: u64,
    /// Bytes of key plus value per entry.
    pub payload_bytes: usize,
    /// Bytes allocated per entry by the full map.
    pub bytes_per_entry: f64,
    /// `bytes_per_entry` over the limit's.
    pub vs_limit: Option<f64>,
    /// Bytes still allocated after removing every entry.
    pub bytes_after_removing_all: i64,
    /// Bytes still allocated after dropping the map (0 unless something leaks or is freed
    /// elsewhere).
    pub bytes_after_drop: i64,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// Throughput blocks, in the order they ran.
    pub blocks: Vec<Block>,
    /// Resize-pause trials.
    pub growth: Vec<GrowthRow>,
    /// Memory trials.
    pub memory: Vec<MemoryRow>,
    /// Whether Ctrl-C cut the run short.
    pub interrupted: bool,
}

impl Results {
    /// Fills in the ratios of the growth and memory rows.
    pub fn summarize(&mut self) {
        for block in &mut self.blocks {
            block.summarize();
        }
        let limit_worst = self
            .growth
            .iter()
            .find(|g| g.family == Family::Limit)
            .map(|g| g.worst_median);
        for row in &mut self.growth {
            row.worst_vs_limit = limit_worst
                .filter(|&w| w > 0)
                .map(|w| row.worst_median as f64 / w as f64);
        }
        let limit_bytes = self
            .memory
            .iter()
            .find(|m| m.family == Family::Limit)
            .map(|m| m.bytes_per_entry);
        for row in &mut self.memory {
            row.vs_limit = limit_bytes
                .filter(|&b| b > 0.0)
                .map(|b| row.bytes_per_entry / b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Dist, Workload};

    #[test]
    fn ratios_use_the_best_peer_and_the_limit() {
        let case = Case {
            workload: Workload::presets().remove(0),
            dist: Dist::Uniform,
            keys: 10,
        };
        let mut block = Block::new(case, 2, 2);
        let none = OpHistograms::default();
        for (a, b, l) in [(10.0, 5.0, 8.0), (12.0, 6.0, 8.0), (11.0, 4.0, 8.0)] {
            block.record("ours", Family::Lanemap, 2, a, &none);
            block.record("peer", Family::Peer, 2, b, &none);
            block.record("limit", Family::Limit, 1, l, &none);
        }
        block.summarize();
        let ours = &block.rows[0];
        assert_eq!((ours.median, ours.min, ours.max), (11.0, 10.0, 12.0));
        assert_eq!(ours.vs_best_peer, Some(11.0 / 5.0));
        assert_eq!(ours.vs_best_peer_spread, Some((2.0, 2.75)));
        assert_eq!(block.ideal, Some(16.0));
        assert_eq!(ours.vs_ideal, Some(11.0 / 16.0));
        assert_eq!(median(&[1.0, 2.0, 3.0, 4.0]), 2.5);
    }
}
