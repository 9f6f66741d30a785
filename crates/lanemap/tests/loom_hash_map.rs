//! loom models of `HashMap`: every interleaving of small scenarios, through the real code.
//!
//! ```sh
//! LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p lanemap --release --test loom_hash_map
//! ```
//!
//! Tables start with 7 slots (5 usable) and a migration moves 2 slots per write under loom, so a
//! handful of inserts grows a table through a migration that spans several writes (the models
//! that prefill 5 or 6 keys start their threads with a migration already under way). The models' teeth:
//!
//! - `--cfg lanemap_broken_publish` stores MOVED marks `Relaxed`: a reader that follows one may
//!   miss the node's copy in the next table (`get_racing_the_migration_of_its_key` fails);
//! - `--cfg lanemap_broken_migrate_key` lets a write skip moving its key out of the old table:
//!   the write lands beside a stale copy (`update_during_migration_is_not_lost` fails);
//! - `--cfg lanemap_broken_forward` marks the old slot of a change of value across groups before
//!   it publishes the new one: a reader may find neither
//!   (`get_racing_a_change_of_value_across_groups` fails);
//! - `--cfg lanemap_broken_origins` lets iteration report a key at the slot it moved on to as
//!   well as at its origin (`iteration_racing_changes_of_value_across_groups` fails);
//! - `--cfg lanemap_broken_recycle` makes a vacated slot FREE at once, without waiting for the
//!   guards that may still hold its entry: an insert writes over a value a reader holds
//!   (`a_vacated_slot_is_reused_only_after_its_readers` fails).
//!
//! The models run with the crate's reclamation stand-in (`reclaim.rs`), which reclaims what
//! was retired each time the last guard ends: so vacated slots do come back for reuse within a
//! model, as they do with seize.
#![cfg(loom)]

use lanemap::{Computed, HashMap, Op};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;
use std::hash::{BuildHasher, Hasher};

/// A deterministic hasher (loom replays executions, so no random seeds): a multiplicative mix
/// of the key, or one constant for every key to force collisions.
#[derive(Clone, Copy, Default)]
struct Mix {
    collide: bool,
}

struct MixHasher {
    state: u64,
    collide: bool,
}

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        if self.collide {
            0x5555_0000_0000_0000
        } else {
            self.state
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.state = (self.state ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
}

impl BuildHasher for Mix {
    type Hasher = MixHasher;

    fn build_hasher(&self) -> MixHasher {
        MixHasher {
            state: 0,
            collide: self.collide,
        }
    }
}

fn map(collide: bool) -> Arc<HashMap<u64, u64, Mix>> {
    Arc::new(HashMap::with_shards(1, 0, Mix { collide }))
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(f);
}

/// Runs `a` and `b` on two spawned threads and returns their results. Both sides run on spawned
/// threads: loom explores far fewer interleavings of work the main thread does after a spawn
/// (a model with the reader on the main thread missed the broken-publish variant).
fn race<A, B>(
    a: impl FnOnce() -> A + Send + 'static,
    b: impl FnOnce() -> B + Send + 'static,
) -> (A, B)
where
    A: Send + 'static,
    B: Send + 'static,
{
    let a = thread::spawn(a);
    let b = thread::spawn(b);
    (a.join().unwrap(), b.join().unwrap())
}

#[test]
fn insert_insert_same_key() {
    model(|| {
        let map = map(false);
        let (m1, m2) = (Arc::clone(&map), Arc::clone(&map));
        let (first, second) = race(move || m1.insert(1, 10), move || m2.insert(1, 20));
        // Exactly one insert came first and saw nothing; the other replaced its value.
        match (first, second) {
            (None, Some(10)) => assert_eq!(map.get(&1), Some(20)),
            (Some(20), None) => assert_eq!(map.get(&1), Some(10)),
            outcome => panic!("not linearizable: {outcome:?}"),
        }
        assert_eq!(map.len(), 1);
    });
}

#[test]
fn insert_insert_colliding_keys() {
    model(|| {
        let map = map(true);
        let (m1, m2) = (Arc::clone(&map), Arc::clone(&map));
        let results = race(move || m1.insert(1, 10), move || m2.insert(2, 20));
        assert_eq!(results, (None, None));
        assert_eq!(
            (map.get(&1), map.get(&2), map.len()),
            (Some(10), Some(20), 2)
        );
    });
}

#[test]
fn insert_remove() {
    model(|| {
        let map = map(false);
        let (m1, m2) = (Arc::clone(&map), Arc::clone(&map));
        let (inserted, removed) = race(move || m1.insert(1, 10), move || m2.remove(&1));
        assert_eq!(inserted, None);
        match removed {
            Some(10) => assert!(map.is_empty()),
            None => assert_eq!(map.get(&1), Some(10)),
            other => panic!("removed {other:?}"),
        }
    });
}

#[test]
fn get_racing_publication_of_a_new_entry() {
    model(|| {
        let map = map(false);
        let published = Arc::new(AtomicBool::new(false));
        let (m1, m2) = (Arc::clone(&map), Arc::clone(&map));
        let (f1, f2) = (Arc::clone(&published), Arc::clone(&published));
        race(
            move || {
                m1.insert(1, 10);
                f1.store(true, Ordering::Release);
            },
            move || {
                let seen_flag = f2.load(Ordering::Acquire);
                let value = m2.get(&1);
                assert!(value.is_none() || value == Some(10), "{value:?}");
                if seen_flag {
                    assert_eq!(value, Some(10), "an insert that returned is visible");
                }
            },
        );
    });
}

#[test]
fn two_inserts_that_both_trigger_a_resize() {
    model(|| {
        let map = map(false);
        // A 7-slot table holds 5 entries; with 4 in, whichever insert comes second starts a
        // migration, right behind the other's write.
        for key in 0..4 {
            map.insert(key, key);
        }
        let (m1, m2) = (Arc::clone(&map), Arc::clone(&map));
        race(move || m1.insert(100, 100), move || m2.insert(200, 200));
        for key in (0..4).chain([100, 200]) {
            assert_eq!(map.get(&key), Some(key), "key {key}");
        }
        assert_eq!(map.len(), 6);
    });
}

#[test]
fn get_racing_the_migration_of_its_key() {
    model(|| {
        let map = map(false);
        for key in 0..6 {
            map.insert(key, key);
        }
        let (m1, m2) = (Arc::clone(&map), Arc::clone(&map));
        race(
            // These writes start a migration and move chunks of the old table while `get` reads.
            move || {
                m1.insert(10, 10);
                m1.remove(&5);
            },
            move || {
                for key in [0, 3] {
                    assert_eq!(m2.get(&key), Some(key), "key {key} is present throughout");
                }
            },
        );
        assert_eq!(map.get(&5), None);
        assert_eq!(map.len(), 6);
    });
}

#[test]
fn update_during_migration_is_not_lost() {
    model(|| {
        let map = map(false);
        for key in 0..6 {
            map.insert(key, key);
        }
        let (m1, m2) = (Arc::clone(&map), Arc::clone(&map));
        race(
            move || m1.insert(10, 10), // starts a migration that moves 2 slots per write
            move || {
                m2.update(&4, |v| *v += 100);
                assert_eq!(
                    m2.compute(4, |v| Op::Set(v.unwrap() + 1)),
                    Computed::Replaced(104)
                );
            },
        );
        assert_eq!(map.get(&4), Some(105));
        let mut keys: Vec<u64> = map.keys().collect();
        keys.sort_unstable();
        assert_eq!(keys, [0, 1, 2, 3, 4, 5, 10], "one copy of each key");
    });
}

/// Counts live values, to see that a removed value is dropped exactly once, and not while a
/// reader holds it.
struct Counted {
    value: u64,
    live: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}

#[test]
fn removal_while_a_reader_holds_the_value() {
    model(|| {
        let live = Arc::new(AtomicUsize::new(1));
        let map: Arc<HashMap<u64, Counted, Mix>> =
            Arc::new(HashMap::with_shards(1, 0, Mix::default()));
        map.pin().insert(
            1,
            Counted {
                value: 7,
                live: Arc::clone(&live),
            },
        );
        let (m1, m2) = (Arc::clone(&map), Arc::clone(&map));
        race(
            move || {
                let removed = m1.pin().remove(&1).map(|c| c.value);
                assert!(removed.is_none() || removed == Some(7));
            },
            move || {
                let pinned = m2.pin();
                if let Some(held) = pinned.get(&1) {
                    // Whatever the remover does meanwhile, the value stays intact.
                    assert_eq!(held.value, 7);
                    thread::yield_now();
                    assert_eq!(held.value, 7);
                }
            },
        );
        drop(map);
        assert_eq!(live.load(Ordering::Relaxed), 0, "dropped exactly once");
    });
}

/// A reader holds a key's value while a writer removes that key and a neighbour (a full batch
/// of vacated slots, 2 under loom) and then inserts new keys into the same group (all keys
/// collide), which reuse the vacated slots as soon as reclamation hands them back: only once
/// the reader's guard has ended.
#[test]
fn a_vacated_slot_is_reused_only_after_its_readers() {
    model(|| {
        let map = map(true);
        map.insert(1, 10);
        map.insert(2, 20);
        let (m1, m2) = (Arc::clone(&map), Arc::clone(&map));
        race(
            move || {
                assert_eq!(m1.remove(&1), Some(10));
                assert_eq!(m1.remove(&2), Some(20));
                assert_eq!(m1.insert(3, 30), None);
                assert_eq!(m1.insert(4, 40), None);
            },
            move || {
                let pinned = m2.pin();
                if let Some(held) = pinned.get(&1) {
                    assert_eq!(*held, 10);
                    thread::yield_now();
                    assert_eq!(*held, 10, "a held value was written over");
                }
            },
        );
        assert_eq!(
            (
                map.get(&1),
                map.get(&2),
                map.get(&3),
                map.get(&4),
                map.len()
            ),
            (None, None, Some(30), Some(40), 2)
        );
        // The table's 5 usable slots: 2 entries, and 3 never used if 3 and 4 took the vacated
        // slots (else 1).
        if map.capacity() == 5 {
            REUSED.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    // Some interleavings (the reader done, or not holding the key, before the inserts) must
    // reuse the slots: else the model proves nothing about reuse.
    assert!(
        REUSED.load(std::sync::atomic::Ordering::Relaxed),
        "no execution reused a slot"
    );
}

/// Set by `a_vacated_slot_is_reused_only_after_its_readers` when an execution reused a slot
/// (outside loom's model: it spans executions).
static REUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[test]
fn iteration_racing_writes() {
    model(|| {
        let map = map(false);
        for key in 0..5 {
            map.insert(key, key);
        }
        let (m1, m2) = (Arc::clone(&map), Arc::clone(&map));
        let ((), mut seen) = race(
            move || {
                m1.insert(20, 20); // grows the table: the walk may meet a migration
                m1.remove(&4);
            },
            move || m2.keys().collect::<Vec<u64>>(),
        );
        seen.sort_unstable();
        let before = seen.len();
        seen.dedup();
        assert_eq!(before, seen.len(), "no key twice: {seen:?}");
        for key in 0..4 {
            assert!(
                seen.contains(&key),
                "key {key} present throughout was missed: {seen:?}"
            );
        }
    });
}

/// A map whose keys all hash alike, holding 0..8 in a settled 4-group table: keys 0..7 fill
/// group 0 and key 7 is the first of group 1, so a change of value of a key of group 0 must
/// write its new entry in group 1.
fn full_group() -> Arc<HashMap<u64, u64, Mix>> {
    let map = map(true);
    for key in 0..8 {
        map.insert(key, key);
    }
    // Finishes the migration the inserts started.
    map.flush_removed();
    map
}

#[test]
fn get_racing_a_change_of_value_across_groups() {
    model(|| {
        let map = full_group();
        let (m1, m2) = (Arc::clone(&map), Arc::clone(&map));
        race(
            move || assert_eq!(m1.update(&3, |v| *v += 100), Some(())),
            move || {
                let value = m2.get(&3);
                assert!(matches!(value, Some(3 | 103)), "{value:?}");
            },
        );
        assert_eq!(map.get(&3), Some(103));
        assert_eq!(map.len(), 8);
    });
}

#[test]
fn iteration_racing_changes_of_value_across_groups() {
    model(|| {
        let map = full_group();
        let (m1, m2) = (Arc::clone(&map), Arc::clone(&map));
        let ((), mut seen) = race(
            move || {
                // Across groups, then within group 1: the key's origin stays in group 0.
                m1.update(&2, |v| *v += 100);
                m1.update(&2, |v| *v += 100);
            },
            move || m2.iter().collect::<Vec<(u64, u64)>>(),
        );
        seen.sort_unstable();
        let keys: Vec<u64> = seen.iter().map(|&(k, _)| k).collect();
        assert_eq!(keys, (0..8).collect::<Vec<_>>(), "each key once: {seen:?}");
        assert!(matches!(seen[2].1, 2 | 102 | 202), "{seen:?}");
        // Removed from its moved-on slot and inserted again: one origin left, not two.
        map.remove(&2);
        map.insert(2, 7);
        let mut keys: Vec<u64> = map.keys().collect();
        keys.sort_unstable();
        assert_eq!(keys, (0..8).collect::<Vec<_>>());
    });
}

/// The harness itself: loom must find this textbook lost update.
#[test]
fn control_lost_update_is_found() {
    let result = std::panic::catch_unwind(|| {
        model(|| {
            let n = Arc::new(AtomicUsize::new(0));
            let (a, b) = (Arc::clone(&n), Arc::clone(&n));
            let bump = |m: Arc<AtomicUsize>| {
                let v = m.load(Ordering::SeqCst);
                m.store(v + 1, Ordering::SeqCst);
            };
            race(move || bump(a), move || bump(b));
            assert_eq!(n.load(Ordering::SeqCst), 2);
        })
    });
    assert!(
        result.is_err(),
        "loom missed a lost update: the models would prove nothing"
    );
}
