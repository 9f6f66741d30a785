//! loom models of `ShardedMap`: every interleaving (up to `LOOM_MAX_PREEMPTIONS`) of two or
//! three threads racing on one key, on a single-shard map with no initial capacity so that
//! the table grows inside the models.
//!
//! ```sh
//! LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p lanemap --release --test loom_sharded
//! ```
//!
//! Teeth: with `RUSTFLAGS="--cfg loom --cfg lanemap_broken"`, `get_or_insert_with` skips its
//! second look under the write lock (check-then-act), and
//! `get_or_insert_with_runs_its_closure_once` must fail.
#![cfg(loom)]

use lanemap::{Computed, Op, ShardedMap};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use std::hash::{BuildHasherDefault, DefaultHasher};

/// A fixed hasher: the same table layout in every execution.
type Map = ShardedMap<u64, u64, BuildHasherDefault<DefaultHasher>>;

fn map(shards: usize) -> Arc<Map> {
    Arc::new(
        ShardedMap::builder()
            .shards(shards)
            .capacity(0)
            .hasher(BuildHasherDefault::default())
            .build(),
    )
}

fn contents(map: &Map) -> Vec<(u64, u64)> {
    let mut all: Vec<_> = map.iter().collect();
    all.sort_unstable();
    all
}

#[test]
fn insert_insert_same_key() {
    loom::model(|| {
        let m = map(1);
        let other = {
            let m = m.clone();
            thread::spawn(move || m.insert(7, 2))
        };
        let mine = m.insert(7, 1);
        let theirs = other.join().unwrap();
        // One went first and found the key absent; the second replaced the first's value.
        match (mine, theirs) {
            (None, Some(1)) => assert_eq!(m.get(&7), Some(2)),
            (Some(2), None) => assert_eq!(m.get(&7), Some(1)),
            other => panic!("impossible results {other:?}"),
        }
        assert_eq!(m.len(), 1);
    });
}

#[test]
fn insert_remove_same_key() {
    loom::model(|| {
        let m = map(1);
        m.insert(1, 0);
        let remover = {
            let m = m.clone();
            thread::spawn(move || m.remove(&7))
        };
        let inserted = m.insert(7, 5);
        let removed = remover.join().unwrap();
        assert_eq!(inserted, None);
        match removed {
            Some(5) => assert_eq!(contents(&m), [(1, 0)]),
            None => assert_eq!(contents(&m), [(1, 0), (7, 5)]),
            other => panic!("remove returned {other:?}"),
        }
        assert_eq!(m.len(), contents(&m).len());
    });
}

#[test]
fn get_or_insert_with_runs_its_closure_once() {
    loom::model(|| {
        let m = map(1);
        let runs = Arc::new(AtomicUsize::new(0));
        let spawn = |value: u64| {
            let (m, runs) = (m.clone(), runs.clone());
            thread::spawn(move || {
                m.get_or_insert_with(3, || {
                    runs.fetch_add(1, Ordering::Relaxed);
                    value
                })
            })
        };
        let (a, b) = (spawn(10), spawn(20));
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert_eq!(
            runs.load(Ordering::Relaxed),
            1,
            "the closure ran more than once"
        );
        assert_eq!(a, b, "the two callers saw different values");
        assert_eq!(contents(&m), [(3, a)]);
        assert_eq!(m.len(), 1);
    });
}

#[test]
fn update_update_loses_no_update() {
    loom::model(|| {
        let m = map(1);
        m.insert(4, 0);
        let bump = || {
            let m = m.clone();
            thread::spawn(move || m.update(&4, |v| *v += 1))
        };
        let (a, b) = (bump(), bump());
        assert_eq!(a.join().unwrap(), Some(()));
        assert_eq!(b.join().unwrap(), Some(()));
        assert_eq!(m.get(&4), Some(2));
    });
}

#[test]
fn compute_and_compare_exchange_serialize() {
    loom::model(|| {
        let m = map(1);
        m.insert(9, 1);
        let cas = {
            let m = m.clone();
            thread::spawn(move || m.compare_exchange(&9, &1, 5).is_ok())
        };
        let computed = m.compute(9, |v| match v {
            Some(&x) => Op::Set(x * 10),
            None => Op::Keep,
        });
        let swapped = cas.join().unwrap();
        // Either order, never a mix: 1 -> 5 -> 50, or 1 -> 10 and the CAS fails.
        match (computed, swapped) {
            (Computed::Replaced(5), true) => assert_eq!(m.get(&9), Some(50)),
            (Computed::Replaced(1), false) => assert_eq!(m.get(&9), Some(10)),
            other => panic!("impossible results {other:?}"),
        }
    });
}

#[test]
fn len_is_consistent_across_shards_and_growth() {
    loom::model(|| {
        let m = map(2);
        let writer = {
            let m = m.clone();
            thread::spawn(move || {
                m.insert(1, 1);
                m.insert(2, 2);
                m.remove(&1);
            })
        };
        let other = {
            let m = m.clone();
            thread::spawn(move || {
                m.insert(3, 3);
            })
        };
        // Seen while writes are in flight: never more entries than could exist at once.
        let seen = m.len();
        assert!(seen <= 3, "len {seen} while at most 3 entries exist");
        writer.join().unwrap();
        other.join().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(contents(&m), [(2, 2), (3, 3)]);
    });
}
