//! A panic in user code (`Hash`, `Eq`, `Clone`, `Drop` of keys and values, or any closure)
//! must leave the map consistent and usable.
//!
//! Keys and values are [`Tracked`]: they count their live instances and panic on demand. After
//! each caught panic, [`Fixture::verify`] checks that
//! - no lock stays held: every shard's write and read lock can be taken, from another thread;
//! - no entry was duplicated or lost: the contents equal the model of what must be there;
//! - nothing was dropped twice or leaked: live instances == 2 × len, and 0 once the map is gone;
//! - the map still works: inserts, reads and removes across all shards.

mod common;

use common::tracked::{Lab, PLANNED, Tracked, Trap};
use common::{ConcurrentMap, Family, expect_panic, map_tests, quiet_expected_panics, run_bounded};
use lanemap::{Computed, Op};
use std::collections::BTreeMap;
use std::sync::Arc;

type Map<F> = <F as Family>::Map<Tracked, Tracked>;

/// Entries a fixture starts with: ids `0..ENTRIES`, key id == value id.
const ENTRIES: u32 = 64;
/// An id that is not in the map at the start.
const ABSENT: u32 = 1000;

struct Fixture<F: Family> {
    lab: Arc<Lab>,
    map: Arc<Map<F>>,
    /// What the map must hold: key id -> value id.
    model: BTreeMap<u32, u32>,
}

impl<F: Family> Fixture<F> {
    fn new(shards: usize, lab: Arc<Lab>) -> Self {
        let map = Arc::new(<Map<F> as ConcurrentMap<Tracked, Tracked>>::with_layout(
            shards, 0,
        ));
        let mut model = BTreeMap::new();
        for id in 0..ENTRIES {
            map.insert(lab.tracked(id), lab.tracked(id));
            model.insert(id, id);
        }
        Self { lab, map, model }
    }

    fn t(&self, id: u32) -> Tracked {
        self.lab.tracked(id)
    }

    /// Runs `f`, which must panic with a planned panic (of `trap`, if given), then disarms.
    fn planned_panic(&self, what: &str, trap: Option<Trap>, f: impl FnOnce(&Map<F>)) {
        let fired_before = trap.map(|trap| self.lab.fired(trap));
        let message = expect_panic(what, || f(&self.map));
        assert!(
            message.starts_with(PLANNED),
            "{what}: unexpected panic: {message}"
        );
        if let (Some(trap), Some(before)) = (trap, fired_before) {
            assert_eq!(
                self.lab.fired(trap),
                before + 1,
                "{what}: the {trap:?} trap did not fire"
            );
        }
        self.lab.disarm();
    }

    /// The checks listed in the file's docs; consumes the fixture.
    fn verify(self, what: &str) {
        let Self { lab, map, model } = self;
        // 1. Every lock is free: all write locks (retain), all read locks (for_each), from
        //    another thread; plus single-key operations spread over every shard.
        let other = Arc::clone(&map);
        let other_lab = Arc::clone(&lab);
        std::thread::spawn(move || {
            other.retain(|_, _| true);
            other.for_each(|_, _| ());
            for id in 2000..2256 {
                assert!(
                    other
                        .insert(other_lab.tracked(id), other_lab.tracked(id))
                        .is_none()
                );
                assert_eq!(other.get(&other_lab.tracked(id)).map(|v| v.id), Some(id));
                assert!(other.remove(&other_lab.tracked(id)).is_some());
            }
        })
        .join()
        .unwrap_or_else(|_| panic!("{what}: the map is unusable from another thread"));
        // 2. Contents.
        let mut seen = BTreeMap::new();
        map.for_each(|k, v| {
            assert!(
                seen.insert(k.id, v.id).is_none(),
                "{what}: key {} twice",
                k.id
            );
        });
        assert_eq!(seen, model, "{what}: contents differ from the model");
        assert_eq!(map.len(), model.len(), "{what}: len");
        // 3. Drop accounting.
        if map.removed_entries_dropped() {
            assert_eq!(
                lab.live(),
                2 * model.len() as isize,
                "{what}: leaked or double-dropped"
            );
        } else {
            assert!(
                lab.live() >= 2 * model.len() as isize,
                "{what}: dropped twice"
            );
        }
        // 4. Still usable, on this thread as well.
        let extra = lab.tracked(3000);
        assert!(map.insert(extra.clone(), lab.tracked(3000)).is_none());
        assert_eq!(map.update(&extra, |v| v.id), Some(3000));
        assert!(map.remove(&extra).is_some());
        drop(extra);
        drop(map);
        assert_eq!(lab.live(), 0, "{what}: instances outlive the map");
    }
}

/// Runs `body` with a bound against deadlock and quiet planned panics.
fn bounded(what: &'static str, body: impl FnOnce() + Send + 'static) {
    run_bounded(what, move || {
        quiet_expected_panics();
        body();
    });
}

// ---------------------------------------------------------------------------------------------
// Panicking Hash, Eq, Clone, Drop.

/// `Hash` panics in every keyed operation: nothing changes, the key and value handed in are
/// dropped exactly once.
fn hash_panics<F: Family>() {
    bounded("hash", || {
        type KeyedOp<F> = fn(&Fixture<F>, &Map<F>);
        let ops: [(&str, KeyedOp<F>); 12] = [
            ("insert", |f, m| drop(m.insert(f.t(ABSENT), f.t(ABSENT)))),
            ("insert existing", |f, m| {
                drop(m.insert(f.t(1), f.t(ABSENT)))
            }),
            ("get", |f, m| drop(m.get(&f.t(1)))),
            ("remove", |f, m| drop(m.remove(&f.t(1)))),
            ("update", |f, m| {
                let _ = m.update(&f.t(1), |_| ());
            }),
            ("upsert", |f, m| {
                m.upsert(f.t(1), || unreachable!(), |_| unreachable!())
            }),
            ("compute", |f, m| {
                drop(m.compute(f.t(1), |_| unreachable!()))
            }),
            ("get_or_insert_with", |f, m| {
                drop(m.get_or_insert_with(f.t(ABSENT), || unreachable!()))
            }),
            ("remove_if", |f, m| {
                drop(m.remove_if(&f.t(1), |_| unreachable!()))
            }),
            ("compare_exchange", |f, m| {
                drop(m.compare_exchange(&f.t(1), &f.t(1), f.t(2)))
            }),
            ("swap", |f, m| drop(m.swap(&f.t(1), f.t(2)))),
            ("contains_key", |f, m| {
                let _ = m.contains_key(&f.t(1));
            }),
        ];
        for shards in [1, 8] {
            for (what, op) in ops {
                let fixture = Fixture::<F>::new(shards, Lab::new());
                fixture.lab.arm(Trap::Hash, 1);
                fixture.planned_panic(what, Some(Trap::Hash), |m| op(&fixture, m));
                fixture.verify(what);
            }
        }
    });
}

/// With every key hashing alike, `Eq` runs against several stored keys; it panics at the
/// 1st, 2nd, ... comparison of an insert (new and existing key), a lookup and a removal.
fn eq_panics_with_colliding_keys<F: Family>() {
    bounded("eq", || {
        for nth in [1, 2, 5, 20] {
            for what in [
                "insert new",
                "insert existing",
                "get",
                "remove",
                "compare_exchange",
            ] {
                let mut fixture = Fixture::<F>::new(4, Lab::colliding());
                fixture.lab.arm(Trap::Eq, nth);
                let map = &fixture.map;
                let t = |id| fixture.lab.tracked(id);
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match what {
                        "insert new" => map.insert(t(ABSENT), t(ABSENT)).map(|_| ()),
                        "insert existing" => map.insert(t(40), t(ABSENT)).map(|_| ()),
                        "get" => map.get(&t(40)).map(|_| ()),
                        "remove" => map.remove(&t(40)).map(|_| ()),
                        _ => map.compare_exchange(&t(40), &t(40), t(7)).ok().map(|_| ()),
                    }));
                let fired = fixture.lab.fired(Trap::Eq) == 1;
                fixture.lab.disarm();
                match outcome {
                    Err(panic) => {
                        let message = common::panic_message(&*panic);
                        assert!(message.starts_with(PLANNED), "{what}: {message}");
                        assert!(fired);
                    }
                    // A lookup may find its key before the nth comparison; then it must have
                    // done its job.
                    Ok(found) => {
                        assert!(!fired, "{what}: Eq panicked but the call returned");
                        assert!(
                            nth > 1 && what != "insert new",
                            "{what}: no panic at nth {nth}"
                        );
                        assert!(found.is_some(), "{what}: key 40 not found");
                        match what {
                            "insert existing" => {
                                fixture.model.insert(40, ABSENT);
                            }
                            "remove" => {
                                fixture.model.remove(&40);
                            }
                            "compare_exchange" => {
                                fixture.model.insert(40, 7);
                            }
                            _ => {}
                        }
                    }
                }
                fixture.verify(what);
            }
        }
    });
}

/// `Clone` panics while `get`, `get_key_value`, `get_or_insert_with` or a failed
/// `compare_exchange` clones under the lock.
fn clone_panics_in_reads<F: Family>() {
    bounded("clone in reads", || {
        for shards in [1, 8] {
            let fixture = Fixture::<F>::new(shards, Lab::new());
            fixture.lab.arm(Trap::Clone, 1);
            fixture.planned_panic("get", Some(Trap::Clone), |m| drop(m.get(&fixture.t(5))));
            fixture.lab.arm(Trap::Clone, 1);
            fixture.planned_panic("get_key_value key", Some(Trap::Clone), |m| {
                drop(m.get_key_value(&fixture.t(5)))
            });
            fixture.lab.arm(Trap::Clone, 2);
            fixture.planned_panic("get_key_value value", Some(Trap::Clone), |m| {
                drop(m.get_key_value(&fixture.t(5)))
            });
            fixture.lab.arm(Trap::Clone, 1);
            fixture.planned_panic("get_or_insert_with present", Some(Trap::Clone), |m| {
                drop(m.get_or_insert_with(fixture.t(5), || unreachable!()))
            });
            fixture.lab.arm(Trap::Clone, 1);
            fixture.planned_panic("compare_exchange", Some(Trap::Clone), |m| {
                drop(m.compare_exchange(&fixture.t(5), &fixture.t(6), fixture.t(7)))
            });
            fixture.verify("clone in reads");
        }
    });
}

/// `get_or_insert_with` of an absent key inserts, then clones the value to return it: a panic
/// in that clone leaves the inserted entry in place (once).
fn clone_panics_after_get_or_insert_with_inserted<F: Family>() {
    bounded("clone after insert", || {
        let mut fixture = Fixture::<F>::new(8, Lab::new());
        fixture.lab.arm(Trap::Clone, 1);
        let value = fixture.t(ABSENT + 1);
        fixture.planned_panic("get_or_insert_with absent", Some(Trap::Clone), |m| {
            drop(m.get_or_insert_with(fixture.t(ABSENT), || value))
        });
        fixture.model.insert(ABSENT, ABSENT + 1);
        fixture.verify("clone after insert");
    });
}

/// `Clone` panics part-way through iteration and through cloning the whole map: the clones
/// made so far are dropped, the map is untouched.
fn clone_panics_in_iteration_and_map_clone<F: Family>() {
    bounded("clone in iter", || {
        for shards in [1, 8] {
            for nth in [1, 2, 37, 2 * ENTRIES as usize] {
                let fixture = Fixture::<F>::new(shards, Lab::new());
                fixture.lab.arm(Trap::Clone, nth);
                fixture.planned_panic("iter", Some(Trap::Clone), |m| {
                    let _ = m.iter().count();
                });
                fixture.lab.arm(Trap::Clone, nth);
                fixture.planned_panic("clone", Some(Trap::Clone), |m| drop(m.clone()));
                fixture.verify("clone in iter");
            }
        }
    });
}

/// A value's `Drop` panics during `clear`: the shard being cleared still ends up empty (its
/// other entries dropped once), shards after it keep their entries; a second `clear` finishes.
fn drop_panics_in_clear<F: Family>() {
    bounded("drop in clear", || {
        // One shard: everything goes.
        for nth in [1, 2, 50] {
            let mut fixture = Fixture::<F>::new(1, Lab::new());
            fixture.lab.arm(Trap::Drop, nth);
            fixture.planned_panic("clear", Some(Trap::Drop), |m| m.clear());
            fixture.model.clear();
            fixture.verify("drop in clear, one shard");
        }
        // Several shards: what is left is whole entries from the original ones.
        for nth in [1, 9, 60] {
            let mut fixture = Fixture::<F>::new(8, Lab::new());
            fixture.lab.arm(Trap::Drop, nth);
            fixture.planned_panic("clear", Some(Trap::Drop), |m| m.clear());
            let mut left = BTreeMap::new();
            fixture.map.for_each(|k, v| {
                left.insert(k.id, v.id);
            });
            assert!(left.len() < ENTRIES as usize, "clear removed nothing");
            assert!(left.iter().all(|(k, v)| fixture.model.get(k) == Some(v)));
            fixture.model = left;
            fixture.map.clear();
            fixture.model.clear();
            fixture.verify("drop in clear, eight shards");
        }
    });
}

/// A removed entry's `Drop` panics during `retain`: entries decided before it are removed or
/// kept as decided, the panicking one is gone (dropped once), the rest untouched.
fn drop_panics_in_retain<F: Family>() {
    bounded("drop in retain", || {
        for shards in [1, 8] {
            for nth in [1, 2, 7] {
                let mut fixture = Fixture::<F>::new(shards, Lab::new());
                let mut visited = Vec::new();
                fixture.lab.arm(Trap::Drop, nth);
                fixture.planned_panic("retain", Some(Trap::Drop), |m| {
                    m.retain(|k, _| {
                        visited.push(k.id);
                        k.id % 2 == 0
                    })
                });
                for id in visited {
                    if id % 2 == 1 {
                        fixture.model.remove(&id);
                    }
                }
                fixture.verify("drop in retain");
            }
        }
    });
}

/// The map drops a key it was handed but does not keep (the stored, equal key stays), or the
/// stored key of an entry it removes; that `Drop` (the first one of the call) panics. The entry
/// must be changed as the call intended, and nothing leaked, in particular not the value the
/// call was about to return.
fn drop_panics_for_the_key_of<F: Family>(
    what: &'static str,
    op: fn(&Map<F>, &dyn Fn(u32) -> Tracked),
    change: fn(&mut BTreeMap<u32, u32>),
) {
    bounded(what, move || {
        let mut fixture = Fixture::<F>::new(8, Lab::new());
        fixture.lab.arm(Trap::Drop, 1);
        let t = |id| fixture.lab.tracked(id);
        fixture.planned_panic(what, Some(Trap::Drop), |m| op(m, &t));
        change(&mut fixture.model);
        fixture.verify(what);
    });
}

fn drop_panics_for_key_in_insert_existing<F: Family>() {
    drop_panics_for_the_key_of::<F>(
        "insert existing",
        |m, t| drop(m.insert(t(3), t(ABSENT))),
        |model| {
            model.insert(3, ABSENT);
        },
    );
}

fn drop_panics_for_key_in_upsert_existing<F: Family>() {
    drop_panics_for_the_key_of::<F>(
        "upsert existing",
        |m, t| m.upsert(t(3), || unreachable!(), |v| *v = t(ABSENT)),
        |model| {
            model.insert(3, ABSENT);
        },
    );
}

fn drop_panics_for_key_in_get_or_insert_with_existing<F: Family>() {
    drop_panics_for_the_key_of::<F>(
        "get_or_insert_with existing",
        |m, t| drop(m.get_or_insert_with(t(3), || unreachable!())),
        |_| {},
    );
}

fn drop_panics_for_key_in_compute_keep<F: Family>() {
    drop_panics_for_the_key_of::<F>(
        "compute keep",
        |m, t| drop(m.compute(t(3), |_| Op::Keep)),
        |_| {},
    );
}

fn drop_panics_for_key_in_compute_set<F: Family>() {
    drop_panics_for_the_key_of::<F>(
        "compute set",
        |m, t| drop(m.compute(t(3), |_| Op::Set(t(ABSENT)))),
        |model| {
            model.insert(3, ABSENT);
        },
    );
}

fn drop_panics_for_key_in_compute_remove<F: Family>() {
    drop_panics_for_the_key_of::<F>(
        "compute remove",
        |m, t| drop(m.compute(t(3), |_| Op::Remove)),
        |model| {
            model.remove(&3);
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Panicking closures.

fn closure<T>() -> T {
    panic!("{PLANNED} a closure")
}

/// Every callback panics before changing anything: nothing changes.
fn closures_panic_before_changing<F: Family>() {
    bounded("closures", || {
        for shards in [1, 8] {
            let fixture = Fixture::<F>::new(shards, Lab::new());
            let t = |id| fixture.t(id);
            fixture.planned_panic("get_with", None, |m| {
                let _ = m.get_with(&t(1), |_| closure::<()>());
            });
            fixture.planned_panic("update", None, |m| {
                let _ = m.update(&t(1), |_| closure::<()>());
            });
            fixture.planned_panic("upsert insert", None, |m| {
                m.upsert(t(ABSENT), closure, |_| unreachable!())
            });
            fixture.planned_panic("upsert update", None, |m| {
                m.upsert(t(1), || unreachable!(), |_| closure())
            });
            fixture.planned_panic("compute present", None, |m| {
                drop(m.compute(t(1), |_| closure()))
            });
            fixture.planned_panic("compute absent", None, |m| {
                drop(m.compute(t(ABSENT), |_| closure()))
            });
            fixture.planned_panic("remove_if", None, |m| {
                drop(m.remove_if(&t(1), |_| closure()))
            });
            fixture.planned_panic("get_or_insert_with", None, |m| {
                drop(m.get_or_insert_with(t(ABSENT), closure))
            });
            fixture.planned_panic("for_each", None, |m| m.for_each(|_, _| closure()));
            fixture.planned_panic("retain first", None, |m| m.retain(|_, _| closure()));
            fixture.verify("closures");
        }
    });
}

/// What a closure did in place before panicking stays done (the crate docs promise it), and
/// the value it replaced is dropped once.
fn closures_panic_after_changing_in_place<F: Family>() {
    bounded("closures in place", || {
        let mut fixture = Fixture::<F>::new(8, Lab::new());
        let new = fixture.t(500);
        fixture.planned_panic("update", None, |m| {
            let _ = m.update(&fixture.t(1), |v| {
                *v = new;
                closure::<()>()
            });
        });
        fixture.model.insert(1, 500);
        let new = fixture.t(501);
        fixture.planned_panic("upsert update", None, |m| {
            m.upsert(
                fixture.t(2),
                || unreachable!(),
                |v| {
                    *v = new;
                    closure::<()>()
                },
            )
        });
        fixture.model.insert(2, 501);
        fixture.verify("closures in place");
    });
}

/// `retain`'s closure panics on its 10th call, after changing and deciding 9 entries (maps
/// with `retain_mut`).
fn retain_closure_panics_part_way<F: Family>() {
    bounded("retain part way", || {
        for shards in [1, 8] {
            let mut fixture = Fixture::<F>::new(shards, Lab::new());
            let mut decided = Vec::new();
            let lab = Arc::clone(&fixture.lab);
            fixture.planned_panic("retain", None, |m| {
                assert!(m.retain_mut(|k, v| {
                    if decided.len() == 9 {
                        closure::<()>();
                    }
                    *v = lab.tracked(k.id + 10_000);
                    decided.push(k.id);
                    k.id % 3 != 0
                }));
            });
            assert_eq!(decided.len(), 9);
            for id in decided {
                if id % 3 == 0 {
                    fixture.model.remove(&id);
                } else {
                    fixture.model.insert(id, id + 10_000);
                }
            }
            fixture.verify("retain part way");
        }
    });
}

/// Panics in closures of successful calls leave no trace either: a compute that panics after
/// a successful one, then the map is used normally.
fn normal_use_after_many_panics<F: Family>() {
    bounded("many panics", || {
        let mut fixture = Fixture::<F>::new(8, Lab::new());
        for round in 0..50u32 {
            let id = round % ENTRIES;
            fixture.planned_panic("update", None, |m| {
                let _ = m.update(&fixture.t(id), |_| closure::<()>());
            });
            let result = fixture
                .map
                .compute(fixture.t(id), |v| Op::Set(fixture.t(v.unwrap().id + 1)));
            assert!(matches!(result, Computed::Replaced(_)));
            *fixture.model.get_mut(&id).unwrap() += 1;
        }
        fixture.verify("many panics");
    });
}

map_tests!(
    hash_panics,
    eq_panics_with_colliding_keys,
    clone_panics_in_reads,
    clone_panics_after_get_or_insert_with_inserted,
    clone_panics_in_iteration_and_map_clone,
    drop_panics_for_key_in_insert_existing,
    drop_panics_for_key_in_get_or_insert_with_existing,
    drop_panics_for_key_in_compute_keep,
    drop_panics_for_key_in_compute_set,
    closures_panic_before_changing,
    normal_use_after_many_panics,
    drop_panics_for_key_in_compute_remove,
    ; sharded_only:
    // Needs `retain` that changes values (`retain_mut`).
    retain_closure_panics_part_way,
    // HashMap's update/upsert run the closure on a copy: a panic keeps the old value.
    closures_panic_after_changing_in_place,
    drop_panics_for_key_in_upsert_existing,
    // HashMap drops removed entries later (memory reclamation), not inside clear/retain.
    drop_panics_in_clear,
    drop_panics_in_retain,
);
