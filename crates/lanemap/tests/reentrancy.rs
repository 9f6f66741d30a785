//! The callback rule: code the map runs while part of it is locked (closures, and `Clone`, `Eq`,
//! `Debug`, `Drop` of keys and values) must not call the same map. Every such call must panic
//! with a message naming both methods, for every callback site, whether it targets the locked
//! shard or another one, and leave the map consistent and usable. A different map may be called.
//!
//! Every scenario runs under `run_bounded`: if detection broke, the test fails after the bound
//! instead of hanging on the deadlock.

mod common;

use common::tracked::{Probe, Site, arm_probe, probe_fired};
use common::{
    ConcurrentMap, Family, Key, Value, expect_panic, map_tests, quiet_expected_panics, run_bounded,
    sorted_entries,
};
use lanemap::{Computed, Op};
use std::sync::Arc;

type Map<F, K, V> = <F as Family>::Map<K, V>;

/// Entries each map starts with: keys `0..ENTRIES`, value = key.
const ENTRIES: u32 = 32;
/// The key the outer operation works on.
const OUTER: u32 = 0;
/// Keys the inner call uses: the outer key itself (same shard, same entry) and others; with 64
/// shards, 8 other keys all landing in key 0's shard has probability 64^-8, and with 1 shard
/// every key is in the same shard.
const INNER_KEYS: [u32; 9] = [OUTER, 1, 2, 3, 5, 8, 13, 21, 31];
const SHARD_COUNTS: [usize; 2] = [1, 64];

/// A call into the map made from inside one of its callbacks.
#[derive(Debug, Clone, Copy)]
enum Inner {
    Get,
    Insert,
    Remove,
    Update,
    ContainsKey,
    Compute,
    ForEach,
    Clear,
    Iter,
}

impl Inner {
    /// Reads that a map with lock-free reads lets callbacks make.
    fn is_read(self) -> bool {
        matches!(
            self,
            Inner::Get | Inner::ContainsKey | Inner::ForEach | Inner::Iter
        )
    }

    const ALL: [Inner; 9] = [
        Inner::Get,
        Inner::Insert,
        Inner::Remove,
        Inner::Update,
        Inner::ContainsKey,
        Inner::Compute,
        Inner::ForEach,
        Inner::Clear,
        Inner::Iter,
    ];

    /// The method's name as the panic message gives it.
    fn name(self) -> &'static str {
        match self {
            Inner::Get => "get",
            Inner::Insert => "insert",
            Inner::Remove => "remove",
            Inner::Update => "update",
            Inner::ContainsKey => "contains_key",
            Inner::Compute => "compute",
            Inner::ForEach => "for_each",
            Inner::Clear => "clear",
            Inner::Iter => "iter",
        }
    }

    fn call<K: Key, V: Value, M: ConcurrentMap<K, V>>(self, map: &M, key: K, value: V) {
        match self {
            Inner::Get => drop(map.get(&key)),
            Inner::Insert => drop(map.insert(key, value)),
            Inner::Remove => drop(map.remove(&key)),
            Inner::Update => drop(map.update(&key, |_| ())),
            Inner::ContainsKey => drop(map.contains_key(&key)),
            Inner::Compute => drop(map.compute(key, |_| Op::Keep)),
            Inner::ForEach => map.for_each(|_, _| ()),
            Inner::Clear => map.clear(),
            Inner::Iter => drop(map.iter().next()),
        }
    }
}

/// The panic message must name the inner method, then the outer one.
fn assert_names_both<M>(message: &str, name: &str, inner: Inner, outer: &str)
where
    M: ?Sized,
{
    let expected = format!(
        "`{name}::{}` was called on a map from code running inside `{name}::{outer}`",
        inner.name()
    );
    assert!(
        message.contains(&expected),
        "calling {} from {outer}: wrong panic message\n  got: {message}\n  expected it to contain: {expected}",
        inner.name()
    );
    let _ = std::marker::PhantomData::<M>;
}

/// After a caught re-entrancy panic: the map holds `expected`, `len` agrees, every shard can be
/// read- and write-locked (here and from another thread), and inserts and reads work.
fn assert_consistent_and_usable<K, V, M>(map: &Arc<M>, expected: &[(K, V)], extra: (K, V))
where
    K: Key + Ord,
    V: Value,
    M: ConcurrentMap<K, V>,
{
    assert_eq!(
        sorted_entries(&**map),
        expected,
        "contents changed by a failed call"
    );
    assert_eq!(map.len(), expected.len());
    // Every shard's write lock, then read lock, from another thread: a lock left held by the
    // panicking call would block here (and fail the bound).
    let other = Arc::clone(map);
    std::thread::spawn(move || {
        other.retain(|_, _| true);
        other.for_each(|_, _| ());
    })
    .join()
    .expect("the map is unusable from another thread");
    let (key, value) = extra;
    assert_eq!(map.insert(key.clone(), value.clone()), None);
    assert_eq!(map.get(&key), Some(value));
    assert_eq!(map.len(), expected.len() + 1);
    assert!(map.remove(&key).is_some());
}

/// Runs `outer` (an operation on key `OUTER` whose callback makes the armed inner call) for
/// every inner method, inner key and shard count, and checks the panic and the map afterwards.
///
/// `outer(map, hook)` must run `hook` from inside the map's callback and nowhere else.
/// `present` says whether key `OUTER` is in the map when `outer` runs.
fn closure_site<F: Family>(
    outer_name: &'static str,
    present: bool,
    outer: fn(&Map<F, u32, u32>, &dyn Fn()),
) {
    run_bounded(outer_name, move || {
        quiet_expected_panics();
        for shards in SHARD_COUNTS {
            for inner in Inner::ALL {
                if inner.is_read()
                    && <Map<F, u32, u32> as ConcurrentMap<u32, u32>>::CALLBACKS_MAY_READ
                {
                    // Allowed for this map: `reads_from_callbacks` checks that they work.
                    continue;
                }
                for key in INNER_KEYS {
                    let map = Arc::new(Map::<F, u32, u32>::with_layout(shards, 0));
                    for k in 0..ENTRIES {
                        map.insert(k, k);
                    }
                    if !present {
                        map.remove(&OUTER);
                    }
                    let expected = sorted_entries(&*map);
                    let ran = std::cell::Cell::new(false);
                    let hook = || {
                        ran.set(true);
                        inner.call(&*map, key, 1000 + key);
                    };
                    let message = expect_panic(outer_name, || outer(&map, &hook));
                    assert!(ran.get(), "{outer_name}: the callback did not run");
                    let name = <Map<F, u32, u32> as ConcurrentMap<u32, u32>>::NAME;
                    assert_names_both::<()>(&message, name, inner, outer_name);
                    assert_consistent_and_usable(&map, &expected, (ENTRIES + 7, 7));
                }
            }
        }
    });
}

fn from_get_with<F: Family>() {
    closure_site::<F>("get_with", true, |map, hook| {
        map.get_with(&OUTER, |_| hook());
    });
}

fn from_update<F: Family>() {
    closure_site::<F>("update", true, |map, hook| {
        map.update(&OUTER, |_| hook());
    });
}

fn from_upsert_insert<F: Family>() {
    closure_site::<F>("upsert", false, |map, hook| {
        map.upsert(
            OUTER,
            || {
                hook();
                0
            },
            |_| unreachable!("the key is absent"),
        );
    });
}

fn from_upsert_update<F: Family>() {
    closure_site::<F>("upsert", true, |map, hook| {
        map.upsert(OUTER, || unreachable!("the key is present"), |_| hook());
    });
}

fn from_compute_present<F: Family>() {
    closure_site::<F>("compute", true, |map, hook| {
        let _ = map.compute(OUTER, |_| {
            hook();
            Op::Remove
        });
    });
}

fn from_compute_absent<F: Family>() {
    closure_site::<F>("compute", false, |map, hook| {
        let _ = map.compute(OUTER, |_| {
            hook();
            Op::Set(1)
        });
    });
}

fn from_remove_if<F: Family>() {
    closure_site::<F>("remove_if", true, |map, hook| {
        map.remove_if(&OUTER, |_| {
            hook();
            true
        });
    });
}

fn from_get_or_insert_with<F: Family>() {
    closure_site::<F>("get_or_insert_with", false, |map, hook| {
        map.get_or_insert_with(OUTER, || {
            hook();
            0
        });
    });
}

fn from_retain<F: Family>() {
    closure_site::<F>("retain", true, |map, hook| {
        map.retain(|_, _| {
            hook();
            false
        });
    });
}

fn from_for_each<F: Family>() {
    closure_site::<F>("for_each", true, |map, hook| {
        map.for_each(|_, _| hook());
    });
}

/// Like [`closure_site`], for code the map runs on its keys and values: `outer` triggers
/// `site` of a [`Probe`] inside the map. `outer_names` lists the names the message may give
/// (e.g. `Debug` of the whole map may run through `for_each`).
fn probe_site<F: Family>(
    outer_names: &'static [&'static str],
    site: Site,
    outer: fn(&Map<F, Probe, Probe>),
    expected_after: fn(Ids) -> Option<Ids>,
) {
    run_bounded(outer_names[0], move || {
        quiet_expected_panics();
        for shards in SHARD_COUNTS {
            for inner in Inner::ALL {
                if inner.is_read()
                    && <Map<F, Probe, Probe> as ConcurrentMap<Probe, Probe>>::CALLBACKS_MAY_READ
                {
                    continue;
                }
                for key in INNER_KEYS {
                    let map = Arc::new(Map::<F, Probe, Probe>::with_layout(shards, 0));
                    for k in 0..ENTRIES {
                        map.insert(Probe(k), Probe(k));
                    }
                    let before = ids(&*map);
                    let target = Arc::clone(&map);
                    arm_probe(site, move || {
                        inner.call(&*target, Probe(key), Probe(1000 + key))
                    });
                    let message = expect_panic(outer_names[0], || outer(&map));
                    assert!(
                        probe_fired(),
                        "{site:?} never ran inside {}",
                        outer_names[0]
                    );
                    let name = <Map<F, Probe, Probe> as ConcurrentMap<Probe, Probe>>::NAME;
                    let Some(outer_name) = outer_names.iter().find(|outer| {
                        message.contains(&format!("running inside `{name}::{outer}`"))
                    }) else {
                        panic!("expected a re-entrancy panic from {outer_names:?}, got: {message}");
                    };
                    assert_names_both::<()>(&message, name, inner, outer_name);
                    // The map is consistent: `len` agrees with the contents, each entry intact.
                    let after = ids(&*map);
                    assert_eq!(after.len(), map.len());
                    assert!(after.iter().all(|(k, v)| k == v), "an entry was corrupted");
                    if let Some(expected) = expected_after(before) {
                        assert_eq!(after, expected);
                    }
                    // And usable.
                    assert_eq!(map.insert(Probe(500), Probe(500)), None);
                    assert_eq!(map.get(&Probe(500)).map(|p| p.0), Some(500));
                    let other = Arc::clone(&map);
                    std::thread::spawn(move || {
                        other.retain(|_, _| true);
                        other.clear();
                    })
                    .join()
                    .expect("the map is unusable from another thread");
                    assert!(map.is_empty());
                }
            }
        }
    });
}

/// A map's contents as `(key id, value id)` pairs, sorted.
type Ids = Vec<(u32, u32)>;

fn ids<M: ConcurrentMap<Probe, Probe>>(map: &M) -> Ids {
    let mut ids = Vec::new();
    map.for_each(|k, v| ids.push((k.0, v.0)));
    ids.sort_unstable();
    ids
}

fn unchanged(before: Ids) -> Option<Ids> {
    Some(before)
}

fn unknown(_: Ids) -> Option<Ids> {
    None
}

fn value_clone_in_get<F: Family>() {
    probe_site::<F>(
        &["get"],
        Site::Clone,
        |map| drop(map.get(&Probe(OUTER))),
        unchanged,
    );
}

fn value_clone_in_get_key_value<F: Family>() {
    probe_site::<F>(
        &["get_key_value"],
        Site::Clone,
        |map| drop(map.get_key_value(&Probe(OUTER))),
        unchanged,
    );
}

fn clone_in_get_or_insert_with_of_a_present_key<F: Family>() {
    probe_site::<F>(
        &["get_or_insert_with"],
        Site::Clone,
        |map| drop(map.get_or_insert_with(Probe(OUTER), || unreachable!())),
        unchanged,
    );
}

fn clone_in_iteration<F: Family>() {
    probe_site::<F>(
        &["iter"],
        Site::Clone,
        |map| {
            let _ = map.iter().count();
        },
        unchanged,
    );
}

fn clone_of_the_whole_map<F: Family>() {
    probe_site::<F>(&["clone"], Site::Clone, |map| drop(map.clone()), unchanged);
}

fn clone_in_failed_compare_exchange<F: Family>() {
    probe_site::<F>(
        &["compare_exchange"],
        Site::Clone,
        |map| drop(map.compare_exchange(&Probe(OUTER), &Probe(999), Probe(5))),
        unchanged,
    );
}

fn key_eq_in_insert<F: Family>() {
    // Inserting an existing key compares it with the stored one.
    probe_site::<F>(
        &["insert"],
        Site::Eq,
        |map| drop(map.insert(Probe(OUTER), Probe(OUTER))),
        unchanged,
    );
}

fn key_eq_in_get_and_remove<F: Family>() {
    probe_site::<F>(
        &["get"],
        Site::Eq,
        |map| drop(map.get(&Probe(OUTER))),
        unchanged,
    );
    probe_site::<F>(
        &["remove"],
        Site::Eq,
        |map| drop(map.remove(&Probe(OUTER))),
        unchanged,
    );
}

fn value_eq_in_compare_exchange<F: Family>() {
    probe_site::<F>(
        &["compare_exchange"],
        Site::Eq,
        |map| drop(map.compare_exchange(&Probe(OUTER), &Probe(OUTER), Probe(OUTER))),
        unchanged,
    );
}

fn debug_of_the_map<F: Family>() {
    probe_site::<F>(
        &["fmt", "for_each", "iter"],
        Site::Debug,
        |map| drop(format!("{map:?}")),
        unchanged,
    );
}

fn drop_during_clear<F: Family>() {
    // The panic leaves the shards not yet cleared as they were: contents are some subset.
    probe_site::<F>(&["clear"], Site::Drop, |map| map.clear(), unknown);
}

fn drop_during_retain<F: Family>() {
    probe_site::<F>(
        &["retain"],
        Site::Drop,
        |map| map.retain(|k, _| k.0 != OUTER),
        |mut before| {
            before.retain(|(k, _)| *k != OUTER);
            Some(before)
        },
    );
}

/// Map A's callback may use map B, even from B's own callbacks; only A itself is refused, even
/// two maps deep.
fn other_maps_are_fine<F: Family>() {
    run_bounded("other maps", || {
        quiet_expected_panics();
        let a = Map::<F, u32, u32>::with_layout(4, 0);
        let b = Map::<F, u32, u32>::with_layout(4, 0);
        a.insert(1, 10);
        b.insert(1, 100);
        assert_eq!(a.get_with(&1, |v| b.insert(2, *v)), Some(None));
        assert_eq!(a.update(&1, |v| b.get(&1).map(|w| *v + w)), Some(Some(110)));
        a.upsert(3, || b.remove(&2).unwrap(), |_| unreachable!());
        assert_eq!(a.get(&3), Some(10));
        assert_eq!(
            a.compute(4, |_| Op::Set(b.len() as u32)),
            Computed::Inserted
        );
        a.retain(|k, _| b.contains_key(k));
        a.for_each(|k, v| {
            b.insert(k + 100, *v);
        });
        assert_eq!(sorted_entries(&a), [(1, 10)]);
        assert_eq!(sorted_entries(&b), [(1, 100), (101, 10)]);
        // Nested: A -> B -> A is still caught, and names A's method.
        let message = expect_panic("a -> b -> a", || {
            a.update(&1, |_| b.update(&1, |_| a.insert(5, 5)));
        });
        assert_names_both::<()>(
            &message,
            <Map<F, u32, u32> as ConcurrentMap<u32, u32>>::NAME,
            Inner::Insert,
            "update",
        );
        // Both maps are usable afterwards.
        a.insert(9, 9);
        b.insert(9, 9);
        assert_eq!((a.get(&9), b.get(&9)), (Some(9), Some(9)));
        // And iteration holds no lock between items: the loop body may write to the same map.
        for (k, v) in a.iter() {
            a.insert(k + 1000, v);
        }
        assert!(a.contains_key(&1001));
    });
}

/// Reads from inside a callback: refused like every other call by a map whose reads lock, and
/// working (with the right answers) in a map with lock-free reads.
fn reads_from_callbacks<F: Family>() {
    run_bounded("reads from callbacks", || {
        quiet_expected_panics();
        let map = Map::<F, u32, u32>::with_layout(4, 0);
        for k in 0..ENTRIES {
            map.insert(k, k);
        }
        type Read<F> = fn(&Map<F, u32, u32>) -> u64;
        let reads: [(Inner, Read<F>); 4] = [
            (Inner::Get, |m| u64::from(m.get(&7).unwrap())),
            (Inner::ContainsKey, |m| u64::from(m.contains_key(&7))),
            (Inner::Iter, |m| m.iter().map(|(_, v)| u64::from(v)).sum()),
            (Inner::ForEach, |m| {
                let mut sum = 0;
                m.for_each(|_, v| sum += u64::from(*v));
                sum
            }),
        ];
        let all: u64 = (0..u64::from(ENTRIES)).sum();
        for (inner, read) in reads {
            let expected = match inner {
                Inner::Get => 7,
                Inner::ContainsKey => 1,
                _ => all,
            };
            let call = || map.update(&OUTER, |_| read(&map));
            if <Map<F, u32, u32> as ConcurrentMap<u32, u32>>::CALLBACKS_MAY_READ {
                assert_eq!(call(), Some(expected), "{} from update", inner.name());
                // And the lock-free callbacks may write.
                map.get_with(&1, |_| map.insert(1, 1));
                map.for_each(|_, _| {
                    map.insert(2, 2);
                });
            } else {
                let message = expect_panic(inner.name(), call);
                let name = <Map<F, u32, u32> as ConcurrentMap<u32, u32>>::NAME;
                assert_names_both::<()>(&message, name, inner, "update");
            }
        }
        let expected: Vec<(u32, u32)> = (0..ENTRIES).map(|k| (k, k)).collect();
        assert_eq!(sorted_entries(&map), expected);
    });
}

map_tests!(
    from_update,
    from_upsert_insert,
    from_upsert_update,
    from_compute_present,
    from_compute_absent,
    from_remove_if,
    from_get_or_insert_with,
    from_retain,
    clone_in_failed_compare_exchange,
    key_eq_in_insert,
    value_eq_in_compare_exchange,
    other_maps_are_fine,
    reads_from_callbacks,
    ; sharded_only:
    // Sites that run under a lock in ShardedMap and without one in HashMap (lock-free reads,
    // deferred drops), where calling the map is allowed.
    from_get_with,
    from_for_each,
    value_clone_in_get,
    value_clone_in_get_key_value,
    clone_in_get_or_insert_with_of_a_present_key,
    clone_in_iteration,
    clone_of_the_whole_map,
    key_eq_in_get_and_remove,
    debug_of_the_map,
    drop_during_clear,
    drop_during_retain,
);

/// `ShardedMap`-only callback sites.
mod sharded_only {
    use super::*;
    use lanemap::ShardedMap;

    /// `par_for_each` runs its closure on rayon's threads; calling the map from there is caught
    /// on the worker thread and the panic reaches the caller.
    #[cfg(feature = "rayon")]
    #[test]
    fn from_par_for_each() {
        run_bounded("par_for_each", || {
            quiet_expected_panics();
            let map: ShardedMap<u32, u32> = ShardedMap::builder().shards(4).build();
            for k in 0..ENTRIES {
                map.insert(k, k);
            }
            let message = expect_panic("par_for_each", || {
                map.par_for_each(|k, _| {
                    map.insert(*k, 0);
                })
            });
            // rayon may hand over the worker's panic payload as is.
            assert!(
                message.contains("`ShardedMap::insert` was called on a map from code running inside `ShardedMap::par_for_each`"),
                "{message}"
            );
            assert_eq!(
                sorted_entries(&map),
                (0..ENTRIES).map(|k| (k, k)).collect::<Vec<_>>()
            );
        });
    }

    /// `par_for_each` called from a callback of the same map is caught on the calling thread
    /// (rayon's workers are not inside the map: without that check they would block on the
    /// shard the caller holds).
    #[cfg(feature = "rayon")]
    #[test]
    fn par_for_each_from_a_callback() {
        run_bounded("par_for_each inside update", || {
            quiet_expected_panics();
            // (With one shard rayon runs the only task on the calling thread, which is caught.)
            let map: ShardedMap<u32, u32> = ShardedMap::builder().shards(4).build();
            map.insert(1, 1);
            let message = expect_panic("par_for_each inside update", || {
                map.update(&1, |_| map.par_for_each(|_, _| ()));
            });
            assert!(
                message.contains("`ShardedMap::par_for_each` was called"),
                "{message}"
            );
            assert_eq!(map.get(&1), Some(1));
        });
    }

    /// The capacity-management methods are refused from callbacks too.
    #[test]
    fn capacity_methods_from_a_callback() {
        run_bounded("capacity methods", || {
            quiet_expected_panics();
            let map: ShardedMap<u32, u32> = ShardedMap::builder().shards(2).build();
            map.insert(1, 1);
            type Call<'a> = (&'a str, &'a dyn Fn(&ShardedMap<u32, u32>));
            let calls: [Call<'_>; 4] = [
                ("capacity", &|m| {
                    let _ = m.capacity();
                }),
                ("shrink_to_fit", &|m| m.shrink_to_fit()),
                ("try_reserve", &|m| drop(m.try_reserve(10))),
                ("get_key_value", &|m| {
                    let _ = m.get_key_value(&1);
                }),
            ];
            for (inner, call) in calls {
                let message = expect_panic(inner, || map.update(&1, |_| call(&map)));
                let expected = format!(
                    "`ShardedMap::{inner}` was called on a map from code running inside `ShardedMap::update`"
                );
                assert!(message.contains(&expected), "{message}");
            }
            assert_eq!(sorted_entries(&map), [(1, 1)]);
        });
    }

    /// `HashMap::insert` and `remove` clone the value they hand back with the shard's lock held
    /// (they pin nothing, and nothing keeps the old entry once the lock is released), so a
    /// `Clone` that calls the map is refused there, as in `ShardedMap`'s callbacks.
    #[test]
    fn hash_map_value_clone_in_insert_and_remove() {
        probe_site::<crate::common::Lockfree>(
            &["insert"],
            Site::Clone,
            |map| drop(map.insert(Probe(OUTER), Probe(OUTER))),
            unchanged,
        );
        probe_site::<crate::common::Lockfree>(
            &["remove"],
            Site::Clone,
            |map| drop(map.remove(&Probe(OUTER))),
            |mut before| {
                before.retain(|(k, _)| *k != OUTER);
                Some(before)
            },
        );
    }

    /// `HashMap::flush_removed` locks every shard in turn, so it is refused from callbacks
    /// (it would deadlock on the shard the callback runs under).
    #[test]
    fn hash_map_flush_removed_from_a_callback() {
        run_bounded("flush_removed", || {
            quiet_expected_panics();
            let map: lanemap::HashMap<u32, u32> =
                lanemap::HashMap::with_shards(1, 0, lanemap::DefaultHashBuilder::default());
            map.insert(1, 1);
            let message = expect_panic("flush_removed", || {
                map.update(&1, |_| map.flush_removed());
            });
            assert!(
                message.contains(
                    "`HashMap::flush_removed` was called on a map from code running inside \
                     `HashMap::update`"
                ),
                "{message}"
            );
            assert_eq!(map.get(&1), Some(1));
            map.flush_removed();
        });
    }
}
