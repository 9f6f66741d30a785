//! Multi-threaded stress tests that check exact final contents (and invariants along the way).
//!
//! Four threads, sizes that keep each test well under a second in debug builds, scaled down
//! under Miri and up with `LANEMAP_STRESS_SCALE=n` for long local runs. No timing assertions;
//! every scenario runs under `run_bounded`, so a deadlock fails the test instead of hanging CI.

mod common;

use common::{ConcurrentMap, Family, map_tests, run_bounded, scaled, sorted_entries};
use lanemap::{Computed, Op};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

const THREADS: usize = 4;

type Map<F, K, V> = <F as Family>::Map<K, V>;

map_tests!(
    disjoint_ranges_end_exact,
    shared_counters_lose_no_update,
    get_or_insert_with_runs_once_per_key,
    compare_exchange_increments_are_exact,
    compute_counts_down_to_removal,
    retain_and_clear_racing_inserts,
    ; sharded_only:
    // Needs `retain` that changes values (`retain_mut`).
    retain_mutations_and_upserts_all_land,
    // HashMap: a key removed and inserted again while a pass runs (this test's churn keys) may
    // be reported twice in that pass, as its docs say; the fix (entries stamped with a per-shard
    // birth sequence, walks reporting only older ones) is planned. Move up when it lands.
    iteration_racing_writes_sees_stable_keys_once,
);

/// Each thread owns a key range: inserts it, overwrites, removes the even keys, updates the odd
/// ones, checking its own reads as it goes. Small tables so that shards grow under contention.
fn disjoint_ranges_end_exact<F: Family>() {
    let per_thread = scaled(2000) as u64;
    let map = Arc::new(Map::<F, u64, u64>::with_layout(4, 0));
    let shared = Arc::clone(&map);
    run_bounded("disjoint ranges", move || {
        thread::scope(|s| {
            for t in 0..THREADS as u64 {
                let map = &*shared;
                s.spawn(move || {
                    let keys = t * per_thread..(t + 1) * per_thread;
                    for k in keys.clone() {
                        assert_eq!(map.insert(k, k), None, "fresh key {k}");
                    }
                    for k in keys.clone() {
                        assert_eq!(map.insert(k, k + 1), Some(k), "overwrite {k}");
                    }
                    for k in keys.clone() {
                        if k % 2 == 0 {
                            assert_eq!(map.remove(&k), Some(k + 1), "remove {k}");
                        } else {
                            assert_eq!(
                                map.update(&k, |v| std::mem::replace(v, k * 3)),
                                Some(k + 1)
                            );
                        }
                    }
                    for k in keys {
                        assert_eq!(map.get(&k), (k % 2 == 1).then_some(k * 3), "read back {k}");
                    }
                });
            }
        });
    });
    let total = per_thread * THREADS as u64;
    let expected: Vec<(u64, u64)> = (0..total)
        .filter(|k| k % 2 == 1)
        .map(|k| (k, k * 3))
        .collect();
    assert_eq!(map.len(), expected.len());
    assert_eq!(sorted_entries(&*map), expected);
}

/// All threads hammer a few counters with `update` and `upsert`: the totals must be exact.
fn shared_counters_lose_no_update<F: Family>() {
    const COUNTERS: u64 = 4;
    let rounds = scaled(5000);
    // One shard: the counters also contend for one lock, the worst case for a lost update.
    // Each layout three times: a lost update needs a preemption inside a short window.
    for shards in [1, 1, 1, 16, 16, 16] {
        let map = Arc::new(Map::<F, u64, u64>::with_layout(shards, 0));
        let shared = Arc::clone(&map);
        run_bounded("shared counters", move || {
            let start = Barrier::new(THREADS);
            thread::scope(|s| {
                for t in 0..THREADS {
                    let (map, start) = (&*shared, &start);
                    s.spawn(move || {
                        start.wait();
                        for i in 0..rounds {
                            let k = (i as u64 + t as u64) % COUNTERS;
                            // upsert creates the counter the first time it is seen.
                            map.upsert(k, || 1, |v| *v += 1);
                            // update only works once it exists, which the upsert made sure of.
                            let after = map.update(&k, |v| {
                                *v += 1;
                                *v
                            });
                            assert!(after.is_some_and(|v| v >= 2), "counter {k} vanished");
                        }
                    });
                }
            });
        });
        let expected_each = (THREADS * rounds * 2) as u64 / COUNTERS;
        let expected: Vec<(u64, u64)> = (0..COUNTERS).map(|k| (k, expected_each)).collect();
        assert_eq!(
            sorted_entries(&*map),
            expected,
            "lost updates with {shards} shard(s)"
        );
    }
}

/// Every thread asks for every key at the same time; for each key exactly one closure runs
/// and every thread gets the winner's value.
fn get_or_insert_with_runs_once_per_key<F: Family>() {
    // Keys `0..free` are walked freely; keys `free..keys` in lockstep, all threads asking for
    // the same key at the same moment (a barrier before each), which is what exposes a
    // check-then-act insert.
    let free = scaled(1000);
    let keys = free + scaled(3000);
    let rounds = if cfg!(miri) { 1 } else { 6 };
    for round in 0..rounds {
        let map = Arc::new(Map::<F, usize, usize>::with_layout(8, 0));
        let runs: Arc<Vec<AtomicUsize>> =
            Arc::new((0..keys).map(|_| AtomicUsize::new(0)).collect());
        let (shared, runs2) = (Arc::clone(&map), Arc::clone(&runs));
        let seen: Vec<Vec<usize>> = run_bounded("get_or_insert_with race", move || {
            let start = Barrier::new(THREADS);
            thread::scope(|s| {
                let workers: Vec<_> = (0..THREADS)
                    .map(|t| {
                        let (map, runs, start) = (&*shared, &*runs2, &start);
                        s.spawn(move || {
                            start.wait();
                            // Half the threads walk the keys backwards, so each key is
                            // contended at least at the start and the end.
                            let order: Vec<usize> = if t % 2 == 0 {
                                (0..free).collect()
                            } else {
                                (0..free).rev().collect()
                            };
                            let make = |k: usize| {
                                runs[k].fetch_add(1, Ordering::SeqCst);
                                k * 10 + t
                            };
                            let mut got = vec![0; keys];
                            for k in order {
                                got[k] = map.get_or_insert_with(k, || make(k));
                            }
                            for (k, slot) in got.iter_mut().enumerate().skip(free) {
                                start.wait();
                                *slot = map.get_or_insert_with(k, || make(k));
                            }
                            got
                        })
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap()).collect()
            })
        });
        for k in 0..keys {
            assert_eq!(
                runs[k].load(Ordering::SeqCst),
                1,
                "round {round}: closure runs for key {k}"
            );
            let stored = map.get(&k).unwrap();
            assert_eq!(stored / 10, k);
            for got in &seen {
                assert_eq!(
                    got[k], stored,
                    "round {round}: a thread saw another value for {k}"
                );
            }
        }
        assert_eq!(map.len(), keys);
    }
}

/// Threads increment counters only through `compare_exchange` retry loops; the final values
/// equal the number of successful exchanges.
fn compare_exchange_increments_are_exact<F: Family>() {
    const COUNTERS: u64 = 3;
    let increments = scaled(3000);
    let map = Arc::new(Map::<F, u64, u64>::with_layout(2, 0));
    for k in 0..COUNTERS {
        map.insert(k, 0);
    }
    let shared = Arc::clone(&map);
    let retries = run_bounded("compare_exchange increments", move || {
        let start = Barrier::new(THREADS);
        let retries = AtomicUsize::new(0);
        thread::scope(|s| {
            for t in 0..THREADS {
                let (map, start, retries) = (&*shared, &start, &retries);
                s.spawn(move || {
                    start.wait();
                    for i in 0..increments {
                        let k = (i + t) as u64 % COUNTERS;
                        let mut current = map.get(&k).unwrap();
                        loop {
                            match map.compare_exchange(&k, &current, current + 1) {
                                Ok(previous) => {
                                    assert_eq!(previous, current);
                                    break;
                                }
                                Err(error) => {
                                    assert_eq!(error.new, current + 1, "the new value comes back");
                                    let actual = error.current.expect("counters are never removed");
                                    assert!(actual > current, "counter {k} went backwards");
                                    current = actual;
                                    retries.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                });
            }
        });
        retries.into_inner()
    });
    let total = (THREADS * increments) as u64;
    assert_eq!(
        map.iter().map(|(_, v)| v).sum::<u64>(),
        total,
        "({retries} retries)"
    );
    assert_eq!(map.len(), COUNTERS as usize);
}

/// Tokens taken with `compute`: each key starts with N tokens and is removed when the last one
/// goes. Every token is taken exactly once, and every key ends up removed by exactly one thread.
fn compute_counts_down_to_removal<F: Family>() {
    let keys = scaled(200) as u64;
    const TOKENS: u64 = 20;
    let map = Arc::new(Map::<F, u64, u64>::with_layout(4, 0));
    for k in 0..keys {
        map.insert(k, TOKENS);
    }
    let shared = Arc::clone(&map);
    let (taken, removed) = run_bounded("compute countdown", move || {
        let taken = AtomicUsize::new(0);
        let removed = AtomicUsize::new(0);
        thread::scope(|s| {
            for t in 0..THREADS as u64 {
                let (map, taken, removed) = (&*shared, &taken, &removed);
                s.spawn(move || {
                    // Visit the keys in a thread-specific order until all are gone.
                    loop {
                        let mut any = false;
                        for i in 0..keys {
                            let k = (i * (2 * t + 1) + t) % keys;
                            let result = map.compute(k, |tokens| match tokens {
                                None => Op::Keep,
                                Some(1) => Op::Remove,
                                Some(n) => Op::Set(n - 1),
                            });
                            match result {
                                Computed::Unchanged => {}
                                Computed::Replaced(n) => {
                                    assert!(n > 1);
                                    any = true;
                                    taken.fetch_add(1, Ordering::Relaxed);
                                }
                                Computed::Removed(n) => {
                                    assert_eq!(n, 1);
                                    any = true;
                                    taken.fetch_add(1, Ordering::Relaxed);
                                    removed.fetch_add(1, Ordering::Relaxed);
                                }
                                Computed::Inserted => panic!("compute inserted {k}"),
                            }
                        }
                        if !any {
                            break;
                        }
                    }
                });
            }
        });
        (taken.into_inner(), removed.into_inner())
    });
    assert_eq!(taken as u64, keys * TOKENS);
    assert_eq!(removed as u64, keys);
    assert!(map.is_empty());
    assert_eq!(map.iter().count(), 0);
}

/// `retain` adds 1000 to every value while other threads `upsert` +1 on the same keys: since
/// each shard's retain pass is atomic, every retain pass and every upsert lands exactly once.
/// (Maps with `retain_mut`.)
fn retain_mutations_and_upserts_all_land<F: Family>() {
    const KEYS: u64 = 64;
    let upserts = scaled(2000);
    let passes = scaled(20) as u64;
    let map = Arc::new(Map::<F, u64, u64>::with_layout(8, 0));
    for k in 0..KEYS {
        map.insert(k, 0);
    }
    let shared = Arc::clone(&map);
    run_bounded("retain vs upsert", move || {
        thread::scope(|s| {
            for t in 0..THREADS - 1 {
                let map = &*shared;
                s.spawn(move || {
                    for i in 0..upserts {
                        map.upsert(
                            (i + t) as u64 % KEYS,
                            || unreachable!("keys stay"),
                            |v| *v += 1,
                        );
                    }
                });
            }
            let map = &*shared;
            s.spawn(move || {
                for _ in 0..passes {
                    let mut visited = 0;
                    assert!(map.retain_mut(|_, v| {
                        *v += 1000;
                        visited += 1;
                        true
                    }));
                    assert_eq!(visited, KEYS, "retain visits every key once");
                }
            });
        });
    });
    let total: u64 = map.iter().map(|(_, v)| v).sum();
    assert_eq!(
        total,
        ((THREADS - 1) * upserts) as u64 + passes * 1000 * KEYS
    );
    for (k, v) in map.iter() {
        assert_eq!(v / 1000, passes, "key {k}: some retain pass was lost");
    }
}

/// `retain` and `clear` race inserts and removes; what must hold throughout and afterwards:
/// - `retain` only ever sees values that were inserted, and removes exactly the odd ones
///   present when it passes: after a final `retain`, no odd value is left;
/// - an entry seen is one that was inserted (value matches key);
/// - `len` matches the contents once the threads are done;
/// - entries inserted after the last `clear` returned are all there.
fn retain_and_clear_racing_inserts<F: Family>() {
    let per_thread = scaled(3000) as u64;
    let map = Arc::new(Map::<F, u64, u64>::with_layout(4, 0));
    let shared = Arc::clone(&map);
    let must_survive = run_bounded("retain/clear vs inserts", move || {
        let writers_done = AtomicUsize::new(0);
        let clearing_over = AtomicBool::new(false);
        thread::scope(|s| {
            let mut writers = Vec::new();
            for t in 0..2u64 {
                let (map, writers_done, clearing_over) = (&*shared, &writers_done, &clearing_over);
                writers.push(s.spawn(move || {
                    let mut must_survive = Vec::new();
                    for i in 0..per_thread {
                        let k = t * per_thread + i;
                        // value: 2k (even) or 2k + 1 (odd); the key is recoverable as v / 2.
                        let v = 2 * k + (i % 2);
                        // Read before the insert: if set, the last clear returned before it.
                        let after_clears = clearing_over.load(Ordering::SeqCst);
                        if let Some(old) = map.insert(k, v) {
                            panic!("key {k} inserted once but held {old}");
                        }
                        if i % 7 == 0 {
                            map.remove(&k);
                        } else if after_clears && v % 2 == 0 {
                            must_survive.push(k);
                        }
                    }
                    writers_done.fetch_add(1, Ordering::SeqCst);
                    must_survive
                }));
            }
            let map = &*shared;
            let done = &writers_done;
            s.spawn(move || {
                while done.load(Ordering::SeqCst) < 2 {
                    map.retain(|k, v| {
                        assert_eq!(*v / 2, *k, "retain saw a value never inserted");
                        *v % 2 == 0
                    });
                    thread::yield_now();
                }
            });
            let clearing_over = &clearing_over;
            s.spawn(move || {
                let mut clears = 0;
                while done.load(Ordering::SeqCst) < 2 && clears < 20 {
                    map.clear();
                    clears += 1;
                    thread::yield_now();
                }
                clearing_over.store(true, Ordering::SeqCst);
            });
            writers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect::<Vec<u64>>()
        })
    });
    map.retain(|_, v| *v % 2 == 0);
    let entries = sorted_entries(&*map);
    assert_eq!(entries.len(), map.len());
    for &(k, v) in &entries {
        assert_eq!(
            v,
            2 * k,
            "entry {k} => {v} should be gone or was never inserted"
        );
        assert!((k % per_thread) % 7 != 0, "removed key {k} came back");
    }
    let present: HashSet<u64> = entries.iter().map(|&(k, _)| k).collect();
    for k in must_survive {
        assert!(
            present.contains(&k),
            "key {k}, inserted after the last clear, is gone"
        );
    }
    // And the map still works normally after the race.
    map.clear();
    assert!(map.is_empty());
    for k in 0..100 {
        map.insert(k, k);
    }
    assert_eq!(
        sorted_entries(&*map),
        (0..100).map(|k| (k, k)).collect::<Vec<_>>()
    );
}

/// Readers iterate (`iter` and `for_each`) while writers churn other keys and rewrite the
/// stable keys' values. Every stable key is seen exactly once per pass, no key twice, and every
/// value seen is one the key really had.
fn iteration_racing_writes_sees_stable_keys_once<F: Family>() {
    let stable = scaled(500) as u64;
    let churn_rounds = scaled(30);
    let map = Arc::new(Map::<F, u64, u64>::with_layout(8, 0));
    for k in 0..stable {
        map.insert(k, k);
    }
    let shared = Arc::clone(&map);
    let passes = run_bounded("iteration vs writes", move || {
        let stop = AtomicBool::new(false);
        let passes = AtomicUsize::new(0);
        thread::scope(|s| {
            // Two writers: churn keys above `stable` (insert + remove, growing shards) and flip
            // the stable keys between k and k + 1_000_000.
            let mut writers = Vec::new();
            for t in 0..2u64 {
                let map = &*shared;
                writers.push(s.spawn(move || {
                    for round in 0..churn_rounds as u64 {
                        for i in 0..stable {
                            let k = stable + (t * stable + i) * 2 + round % 2;
                            map.insert(k, k);
                            let flip = i % stable;
                            map.update(&flip, |v| {
                                *v = if *v == flip { flip + 1_000_000 } else { flip }
                            });
                            map.remove(&(k ^ 1));
                        }
                    }
                }));
            }
            for reader in 0..2 {
                let (map, stop, passes) = (&*shared, &stop, &passes);
                s.spawn(move || {
                    let mut mine = 0;
                    // At least two passes each, however the threads are scheduled.
                    while mine < 2 || !stop.load(Ordering::SeqCst) {
                        mine += 1;
                        let mut seen = HashSet::new();
                        let mut check = |k: u64, v: u64| {
                            assert!(seen.insert(k), "key {k} seen twice in one pass");
                            assert!(v == k || v == k + 1_000_000, "key {k} seen with {v}");
                        };
                        if reader == 0 {
                            for (k, v) in map.iter() {
                                check(k, v);
                            }
                        } else {
                            map.for_each(|&k, &v| check(k, v));
                        }
                        for k in 0..stable {
                            assert!(seen.contains(&k), "stable key {k} missed by a pass");
                        }
                        passes.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            for writer in writers {
                writer.join().unwrap();
            }
            stop.store(true, Ordering::SeqCst);
        });
        passes.into_inner()
    });
    assert!(passes >= 4, "the readers made {passes} passes");
    let entries = sorted_entries(&*map);
    assert_eq!(entries.len(), map.len());
    for (k, v) in entries {
        assert!(v == k || v == k + 1_000_000, "final {k} => {v}");
    }
}
