//! Pre-generated operation streams, one per thread, so that drawing random keys and choosing
//! operations costs nothing inside the timed loop.
//!
//! The key space is `0..space` (key *indices*; the stored key is [`key_of`] the index). Thread
//! `t` of `T` owns the indices `i ≡ t (mod T)` for inserts and removes, and the generator tracks
//! which of its own keys are present, so that an insert adds an absent key and a remove takes
//! a present one, as long as the thread has one: the table keeps the size the workload asks
//! for (a 1/1 insert/remove mix stays at its prefill level instead of drifting to half full).
//! Lookups and updates draw from the whole key space with the workload's distribution, so they
//! hit about as often as the table is full, and Zipfian hot keys are shared by all threads.

use crate::workload::{Case, Dist, Mix};
use crate::zipf::KeySampler;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

/// An operation type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    /// Lookup.
    Get = 0,
    /// Insert (or replace).
    Insert = 1,
    /// Remove.
    Remove = 2,
    /// Read-modify-write in place.
    Update = 3,
}

impl OpKind {
    /// All four, in index order.
    pub const ALL: [OpKind; 4] = [OpKind::Get, OpKind::Insert, OpKind::Remove, OpKind::Update];

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Insert => "insert",
            OpKind::Remove => "remove",
            OpKind::Update => "update",
        }
    }
}

/// One operation packed into a word: the kind in the low two bits, the key index above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op(u64);

impl Op {
    /// Packs an operation.
    pub fn new(kind: OpKind, index: u64) -> Self {
        debug_assert!(index < 1 << 62);
        Self(index << 2 | kind as u64)
    }

    /// The operation type.
    #[inline]
    pub fn kind(self) -> OpKind {
        OpKind::ALL[(self.0 & 3) as usize]
    }

    /// The key index.
    #[inline]
    pub fn index(self) -> u64 {
        self.0 >> 2
    }

    /// The key stored in the map.
    #[inline]
    pub fn key(self) -> u64 {
        key_of(self.index())
    }
}

/// The key for an index: a bijection on `u64` (multiplication by an odd constant) that turns
/// consecutive indices into keys spread over the whole range.
#[inline]
pub fn key_of(index: u64) -> u64 {
    index.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// What to generate for one trial configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamSpec {
    /// The operation mix.
    pub mix: Mix,
    /// How lookups and updates pick keys.
    pub dist: Dist,
    /// Key indices are `0..space`.
    pub space: u64,
    /// Indices `0..prefilled` are in the table when timing starts.
    pub prefilled: u64,
    /// Number of threads (and streams).
    pub threads: usize,
    /// Operations per thread.
    pub ops_per_thread: usize,
    /// Base random seed.
    pub seed: u64,
}

impl StreamSpec {
    /// The spec for `case` at `threads` threads with `total_ops` operations in all.
    ///
    /// A prefilled workload uses `keys` as its key space. A growing one starts empty with twice
    /// `keys` as key space (so inserts always find a new key) and runs as many operations as it
    /// takes to end with about `keys` entries, whatever `total_ops` says.
    pub fn new(case: &Case, threads: usize, total_ops: u64, seed: u64) -> Self {
        let mix = case.workload.mix;
        let keys = case.keys as u64;
        let (space, prefilled, total_ops) = if case.workload.grows() {
            let net_growth = (mix.insert - mix.remove) / 100.0;
            let ops = if net_growth > 0.0 {
                (keys as f64 / net_growth).ceil() as u64
            } else {
                total_ops
            };
            (2 * keys, 0, ops)
        } else {
            (
                keys,
                (keys as f64 * case.workload.prefill).round() as u64,
                total_ops,
            )
        };
        let threads = threads.max(1);
        Self {
            mix,
            dist: case.dist,
            space: space.max(1),
            prefilled,
            threads,
            ops_per_thread: (total_ops / threads as u64).max(1) as usize,
            seed,
        }
    }

    /// The indices thread `thread` inserts before timing starts.
    pub fn prefill_indices(&self, thread: usize) -> impl Iterator<Item = u64> + use<> {
        (thread as u64..self.prefilled).step_by(self.threads)
    }

    /// Generates every thread's stream.
    pub fn generate(&self) -> Vec<Vec<Op>> {
        (0..self.threads).map(|t| self.generate_thread(t)).collect()
    }

    /// Generates the stream of thread `thread`.
    pub fn generate_thread(&self, thread: usize) -> Vec<Op> {
        let mut rng = SmallRng::seed_from_u64(
            self.seed ^ (thread as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407),
        );
        let sampler = KeySampler::new(self.dist, self.space);
        // The thread's own indices; `owned[..live]` are present, the rest absent.
        let mut owned: Vec<u64> = (thread as u64..self.space).step_by(self.threads).collect();
        let mut live = owned.partition_point(|&i| i < self.prefilled);
        let thresholds = thresholds(&self.mix);
        let mut ops = Vec::with_capacity(self.ops_per_thread);
        for _ in 0..self.ops_per_thread {
            let draw = u64::from(rng.random::<u32>());
            let kind = OpKind::ALL[thresholds.iter().position(|&t| draw < t).unwrap_or(3)];
            let index = match kind {
                OpKind::Get | OpKind::Update => sampler.sample(&mut rng),
                OpKind::Insert if live < owned.len() => {
                    let pick = rng.random_range(live..owned.len());
                    owned.swap(pick, live);
                    live += 1;
                    owned[live - 1]
                }
                OpKind::Remove if live > 0 => {
                    let pick = rng.random_range(0..live);
                    owned.swap(pick, live - 1);
                    live -= 1;
                    owned[live]
                }
                // No absent key left to insert (or present key to remove): pick any own key.
                OpKind::Insert | OpKind::Remove if !owned.is_empty() => {
                    owned[rng.random_range(0..owned.len())]
                }
                OpKind::Insert | OpKind::Remove => sampler.sample(&mut rng),
            };
            ops.push(Op::new(kind, index));
        }
        ops
    }
}

/// Cumulative thresholds on a `u32` draw, one per operation kind.
fn thresholds(mix: &Mix) -> [u64; 4] {
    let mut cumulative = 0.0;
    mix.shares().map(|share| {
        cumulative += share;
        ((cumulative / 100.0) * (1u64 << 32) as f64).round() as u64
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Workload;
    use std::collections::HashSet;

    fn case(workload: Workload, dist: Dist, keys: usize) -> Case {
        Case {
            workload,
            dist,
            keys,
        }
    }

    fn shares(ops: &[Op]) -> [f64; 4] {
        let mut counts = [0usize; 4];
        for op in ops {
            counts[op.kind() as usize] += 1;
        }
        counts.map(|c| 100.0 * c as f64 / ops.len() as f64)
    }

    #[test]
    fn measured_shares_match_every_mix_within_one_percent() {
        let mut workloads = Workload::presets();
        workloads.extend(Workload::gradients());
        workloads.push(Workload {
            name: "custom".into(),
            mix: Mix::parse("get=90,insert=5,remove=5").unwrap(),
            prefill: 0.75,
        });
        for workload in workloads {
            for dist in [Dist::Uniform, Dist::Zipf { exponent: 0.99 }] {
                let spec = StreamSpec::new(&case(workload.clone(), dist, 100_000), 2, 200_000, 3);
                let streams = spec.generate();
                let all: Vec<Op> = streams.concat();
                let measured = shares(&all);
                for (m, want) in measured.iter().zip(workload.mix.shares()) {
                    assert!(
                        (m - want).abs() < 1.0,
                        "{}: {measured:?} vs {:?}",
                        workload.name,
                        workload.mix
                    );
                }
            }
        }
    }

    #[test]
    fn inserts_add_new_keys_and_removes_take_present_ones() {
        let workload = Workload::by_name("exchange").unwrap().remove(0);
        let spec = StreamSpec::new(&case(workload, Dist::Uniform, 10_000), 2, 40_000, 9);
        for thread in 0..2 {
            let mut present: HashSet<u64> = spec.prefill_indices(thread).collect();
            for op in spec.generate_thread(thread) {
                let own = op.index() as usize % 2 == thread;
                match op.kind() {
                    OpKind::Insert => {
                        assert!(own && present.insert(op.index()), "insert of a present key")
                    }
                    OpKind::Remove => assert!(
                        own && present.remove(&op.index()),
                        "remove of an absent key"
                    ),
                    OpKind::Get | OpKind::Update => assert!(op.index() < spec.space),
                }
            }
            // 40/40 inserts and removes keep the thread's half at its 75% prefill.
            let size = present.len() as f64 / 5_000.0;
            assert!((0.70..0.80).contains(&size), "{size}");
        }
    }

    #[test]
    fn growing_workloads_end_near_the_requested_size() {
        let workload = Workload::by_name("rapid-grow").unwrap().remove(0);
        let spec = StreamSpec::new(&case(workload, Dist::Uniform, 20_000), 2, 1, 5);
        assert_eq!(spec.prefilled, 0);
        let net: i64 = spec
            .generate()
            .concat()
            .iter()
            .map(|op| match op.kind() {
                OpKind::Insert => 1,
                OpKind::Remove => -1,
                _ => 0,
            })
            .sum();
        assert!((19_000..=21_000).contains(&net), "{net}");
    }

    #[test]
    fn ops_pack_and_unpack() {
        for kind in OpKind::ALL {
            let op = Op::new(kind, 123_456);
            assert_eq!((op.kind(), op.index()), (kind, 123_456));
        }
        assert_ne!(key_of(1), key_of(2));
    }
}
