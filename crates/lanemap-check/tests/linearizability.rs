//! Real-thread stress of every lanemap map, with the linearizability checker as the oracle.
//!
//! `LANEMAP_CHECK_OPS` sets the total number of checked operations per map (default: 5 million
//! in release builds, 200 thousand in debug builds, 900 under Miri), spread over every
//! configuration: key spaces of 1, 4, 64 and 4096 keys, three operation mixes, 2, 4 and 8
//! threads, rounds of 1000 to 5000 operations on a fresh map with no initial capacity (so that
//! every round grows it).

use lanemap::{HashMap, ShardedMap};
use lanemap_check::CheckedMap;
use lanemap_check::workload::{Mix, Stress, stress};
use std::time::Instant;

fn budget() -> usize {
    let default = if cfg!(debug_assertions) {
        200_000
    } else {
        5_000_000
    };
    std::env::var("LANEMAP_CHECK_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn configs() -> Vec<Stress> {
    if cfg!(miri) {
        // Miri runs each operation thousands of times slower, but checks every memory access
        // and explores weak-memory behaviours: a few small rounds.
        return Mix::STRESS
            .into_iter()
            .map(|mix| Stress {
                threads: 3,
                keys: 4,
                mix,
                ops_per_round: 150,
                capacity: 0,
            })
            .collect();
    }
    let mut all = Vec::new();
    for keys in [1u64, 4, 64, 4096] {
        for mix in Mix::STRESS {
            for (i, threads) in [2, 4, 8].into_iter().enumerate() {
                let ops_per_round = [1000, 2500, 5000][(i + keys.trailing_zeros() as usize) % 3];
                all.push(Stress {
                    threads,
                    keys,
                    mix,
                    ops_per_round,
                    capacity: 0,
                });
            }
        }
    }
    all
}

fn run<M: CheckedMap>(name: &str) {
    let configs = configs();
    let per_config = budget().div_ceil(configs.len());
    let started = Instant::now();
    let mut total = 0;
    for (i, cfg) in configs.iter().enumerate() {
        let t = Instant::now();
        match stress::<M>(cfg, per_config, 0x5EED_0000 + i as u64) {
            Ok(checked) => {
                total += checked.ops;
                println!(
                    "{name}: {} threads, {:>4} keys, {:<14} rounds of {}: {} ops linearizable ({:.2?})",
                    cfg.threads,
                    cfg.keys,
                    cfg.mix.name,
                    cfg.ops_per_round,
                    checked.ops,
                    t.elapsed()
                );
            }
            Err(failure) => panic!("{name} is not linearizable:\n{failure}"),
        }
    }
    // A line for scripts/verify to read.
    println!(
        "LINEARIZABILITY map={name} ops={total} violations=0 secs={:.1}",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn sharded_map_is_linearizable() {
    run::<ShardedMap<u64, u64>>("ShardedMap");
}

#[test]
fn hash_map_is_linearizable() {
    run::<HashMap<u64, u64>>("HashMap");
}
