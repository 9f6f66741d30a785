//! Sampled operation latencies, one HdrHistogram per operation type.

use crate::stream::OpKind;
use hdrhistogram::Histogram;
use serde::Serialize;

/// The largest latency recorded exactly, in nanoseconds (longer ones saturate): one minute.
const MAX_NANOS: u64 = 60_000_000_000;

/// A new histogram with three significant digits from 1 ns to a minute.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NANOS, 3).expect("static histogram bounds are valid")
}

/// Latency histograms per operation type, in nanoseconds.
#[derive(Debug, Clone)]
pub struct OpHistograms {
    by_kind: [Histogram<u64>; 4],
}

impl Default for OpHistograms {
    fn default() -> Self {
        Self {
            by_kind: std::array::from_fn(|_| new_histogram()),
        }
    }
}

impl OpHistograms {
    /// Records one sampled operation.
    #[inline]
    pub fn record(&mut self, kind: OpKind, nanos: u64) {
        self.by_kind[kind as usize].saturating_record(nanos.max(1));
    }

    /// Adds another set of samples (from another thread or repetition).
    pub fn merge(&mut self, other: &OpHistograms) {
        for (mine, theirs) in self.by_kind.iter_mut().zip(&other.by_kind) {
            mine.add(theirs).expect("histograms share their bounds");
        }
    }

    /// The percentiles of one operation type, if it was sampled.
    pub fn percentiles(&self, kind: OpKind) -> Option<Percentiles> {
        Percentiles::of(&self.by_kind[kind as usize])
    }

    /// The percentiles of all operation types together.
    pub fn all(&self) -> Option<Percentiles> {
        let mut all = new_histogram();
        for histogram in &self.by_kind {
            all.add(histogram).expect("histograms share their bounds");
        }
        Percentiles::of(&all)
    }
}

/// A latency summary in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Number of sampled operations.
    pub samples: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Slowest sample.
    pub max: u64,
}

impl Percentiles {
    /// The summary of a histogram; `None` when it is empty.
    pub fn of(histogram: &Histogram<u64>) -> Option<Self> {
        (!histogram.is_empty()).then(|| Self {
            samples: histogram.len(),
            p50: histogram.value_at_quantile(0.5),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        })
    }
}

/// Formats nanoseconds with a unit that keeps three digits or fewer.
pub fn format_nanos(nanos: u64) -> String {
    match nanos {
        0..1_000 => format!("{nanos} ns"),
        1_000..1_000_000 => format!("{:.1} µs", nanos as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} ms", nanos as f64 / 1e6),
        _ => format!("{:.2} s", nanos as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_right_kind() {
        let mut histograms = OpHistograms::default();
        for nanos in 1..=1000 {
            histograms.record(OpKind::Get, nanos);
        }
        histograms.record(OpKind::Insert, 5_000);
        let get = histograms.percentiles(OpKind::Get).unwrap();
        assert_eq!(get.samples, 1000);
        assert!((495..=505).contains(&get.p50), "{get:?}");
        assert_eq!(histograms.percentiles(OpKind::Remove), None);
        assert_eq!(histograms.all().unwrap().samples, 1001);
        assert_eq!(format_nanos(1_500), "1.5 µs");
    }
}
