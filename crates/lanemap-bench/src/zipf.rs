//! Key distributions: uniform and Zipfian, over key ranks `0..n`.

use crate::workload::Dist;
use rand::RngExt;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Zipf};

/// Draws key ranks in `0..n`, rank 0 being the hottest under Zipf.
#[derive(Debug, Clone)]
pub enum KeySampler {
    /// Every rank equally likely.
    Uniform {
        /// The number of ranks.
        n: u64,
    },
    /// Rank `r` (from 0) with probability proportional to `1 / (r + 1)^s`.
    Zipf(Zipf<f64>),
}

impl KeySampler {
    /// A sampler over `n` ranks.
    ///
    /// # Panics
    /// If `n` is 0 or the Zipf exponent is negative or not a number (the command line rejects
    /// both before).
    pub fn new(dist: Dist, n: u64) -> Self {
        assert!(n > 0, "a key sampler needs at least one key");
        match dist {
            Dist::Uniform => Self::Uniform { n },
            Dist::Zipf { exponent } => Self::Zipf(
                // rand_distr's Zipf uses rejection-inversion: O(1) per sample, no table, so a
                // DRAM-sized key space costs nothing extra.
                Zipf::new(n as f64, exponent).expect("zipf exponent is validated by the CLI"),
            ),
        }
    }

    /// One rank.
    pub fn sample(&self, rng: &mut SmallRng) -> u64 {
        match self {
            Self::Uniform { n } => rng.random_range(0..*n),
            // Zipf yields 1..=n as a float.
            Self::Zipf(zipf) => zipf.sample(rng) as u64 - 1,
        }
    }
}

/// The probability of rank `r` (from 0) under Zipf with exponent `s` over `n` ranks, computed
/// directly from the definition (for tests and reports).
pub fn zipf_pmf(r: u64, s: f64, n: u64) -> f64 {
    let norm: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
    ((r + 1) as f64).powf(-s) / norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn zipf_top_ranks_follow_the_pmf() {
        let (n, s, draws) = (1000u64, 0.99, 400_000usize);
        let sampler = KeySampler::new(Dist::Zipf { exponent: s }, n);
        let mut rng = SmallRng::seed_from_u64(7);
        let mut counts = vec![0usize; n as usize];
        for _ in 0..draws {
            counts[sampler.sample(&mut rng) as usize] += 1;
        }
        for rank in 0..10u64 {
            let expected = zipf_pmf(rank, s, n);
            let measured = counts[rank as usize] as f64 / draws as f64;
            // Five standard deviations of a binomial share: fails by chance about never.
            let sigma = (expected * (1.0 - expected) / draws as f64).sqrt();
            assert!(
                (measured - expected).abs() < 5.0 * sigma,
                "rank {rank}: measured {measured:.5}, pmf {expected:.5}"
            );
        }
        // And the head as a whole: the top 10 ranks carry their theoretical share.
        let head: f64 = (0..10).map(|r| zipf_pmf(r, s, n)).sum();
        let measured_head = counts[..10].iter().sum::<usize>() as f64 / draws as f64;
        assert!(
            (measured_head - head).abs() < 0.01,
            "{measured_head} vs {head}"
        );
    }

    #[test]
    fn uniform_stays_in_range_and_is_flat() {
        let sampler = KeySampler::new(Dist::Uniform, 10);
        let mut rng = SmallRng::seed_from_u64(1);
        let mut counts = [0usize; 10];
        for _ in 0..100_000 {
            counts[sampler.sample(&mut rng) as usize] += 1;
        }
        for count in counts {
            assert!((9_000..11_000).contains(&count), "{counts:?}");
        }
    }
}
