//! Every public method, single-threaded, against std `HashMap` semantics.
//!
//! The generic tests (`fn name<F: Family>()`) run on every map type listed in
//! `common::map_tests!`; the `sharded_map` module below covers what only `ShardedMap` has
//! (shards, builder, capacity management, feature-gated traits).

mod common;

use common::{ConcurrentMap, Family, map_tests, sorted_entries};
use lanemap::{CompareExchangeError, Computed, Op};
use std::cell::Cell;
use std::collections::HashMap as StdMap;
use std::hash::{Hash, Hasher};

type Map<F, K, V> = <F as Family>::Map<K, V>;

map_tests!(
    empty_map,
    insert_get_and_replace,
    remove_and_remove_entry,
    borrowed_lookups_with_string_keys,
    get_with_runs_only_for_present_keys,
    get_or_insert_with_runs_only_when_absent,
    update_changes_in_place,
    upsert_runs_exactly_one_closure,
    compute_every_op,
    remove_if_checks_then_removes,
    compare_exchange_cases,
    swap_never_inserts,
    retain_filters,
    clear_then_reuse,
    for_each_and_iter_see_every_entry_once,
    growth_from_one_tiny_shard,
    from_iter_later_duplicates_win,
    clone_is_independent,
    debug_formats_as_a_map,
    maps_are_send_and_sync,
    insert_keeps_the_first_key,
);

fn empty_map<F: Family>() {
    let map: Map<F, u64, u64> = ConcurrentMap::fresh();
    assert_eq!(map.len(), 0);
    assert!(map.is_empty());
    assert_eq!(map.get(&1), None);
    assert!(!map.contains_key(&1));
    assert_eq!(map.iter().count(), 0);
    assert_eq!(map.remove(&1), None);
    assert_eq!(map.update(&1, |v| *v), None);
    let mut visited = 0;
    map.for_each(|_, _| visited += 1);
    assert_eq!(visited, 0);
}

fn insert_get_and_replace<F: Family>() {
    let map: Map<F, u64, String> = Map::<F, u64, String>::with_layout(4, 0);
    assert_eq!(map.insert(1, "a".into()), None);
    assert_eq!(map.insert(2, "b".into()), None);
    assert_eq!(map.len(), 2);
    assert!(!map.is_empty());
    assert_eq!(map.insert(1, "c".into()), Some("a".into()));
    assert_eq!(map.len(), 2);
    assert_eq!(map.get(&1).as_deref(), Some("c"));
    assert_eq!(map.get(&2).as_deref(), Some("b"));
    assert_eq!(map.get(&3), None);
    assert_eq!(map.get_key_value(&2), Some((2, "b".into())));
    assert_eq!(map.get_key_value(&3), None);
    assert!(map.contains_key(&1));
    assert!(!map.contains_key(&3));
}

/// A key whose equality and hash look only at `id`, so two "equal" keys can be told apart.
#[derive(Debug, Clone)]
struct Labelled {
    id: u32,
    label: &'static str,
}

impl PartialEq for Labelled {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for Labelled {}
impl Hash for Labelled {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

fn insert_keeps_the_first_key<F: Family>() {
    // As std: inserting an equal key replaces the value but keeps the stored key.
    let map: Map<F, Labelled, u32> = ConcurrentMap::fresh();
    map.insert(
        Labelled {
            id: 1,
            label: "first",
        },
        1,
    );
    assert_eq!(
        map.insert(
            Labelled {
                id: 1,
                label: "second"
            },
            2
        ),
        Some(1)
    );
    let (key, value) = map
        .get_key_value(&Labelled {
            id: 1,
            label: "probe",
        })
        .unwrap();
    assert_eq!((key.label, value), ("first", 2));
    // remove_entry hands back the stored key too.
    let (key, value) = map
        .remove_entry(&Labelled {
            id: 1,
            label: "probe",
        })
        .unwrap();
    assert_eq!((key.label, value), ("first", 2));
}

fn remove_and_remove_entry<F: Family>() {
    let map: Map<F, u32, u32> = (0..10).map(|i| (i, i * 10)).collect();
    assert_eq!(map.remove(&3), Some(30));
    assert_eq!(map.remove(&3), None);
    assert_eq!(map.remove_entry(&4), Some((4, 40)));
    assert_eq!(map.remove_entry(&4), None);
    assert_eq!(map.len(), 8);
    assert!(!map.contains_key(&3));
    assert_eq!(map.get(&5), Some(50));
    // A removed key can come back.
    assert_eq!(map.insert(3, 33), None);
    assert_eq!(map.get(&3), Some(33));
}

fn borrowed_lookups_with_string_keys<F: Family>() {
    let map: Map<F, String, u32> = ConcurrentMap::fresh();
    map.insert("alpha".to_owned(), 1);
    map.insert("beta".to_owned(), 2);
    map.insert("gamma".to_owned(), 3);
    map.insert("delta".to_owned(), 4);
    // Every lookup takes a `&str` for `String` keys.
    assert_eq!(map.get("alpha"), Some(1));
    assert_eq!(map.get("nope"), None);
    assert_eq!(map.get_with("alpha", |v| v + 1), Some(2));
    assert_eq!(map.get_key_value("beta"), Some(("beta".to_owned(), 2)));
    assert!(map.contains_key("beta"));
    assert_eq!(map.update("beta", |v| std::mem::replace(v, 20)), Some(2));
    assert_eq!(map.get("beta"), Some(20));
    assert_eq!(map.compare_exchange("beta", &20, 21), Ok(20));
    assert_eq!(map.swap("beta", 22), Ok(21));
    assert_eq!(map.remove_if("beta", |v| *v == 22), Some(22));
    assert_eq!(map.remove("alpha"), Some(1));
    assert_eq!(map.remove_entry("gamma"), Some(("gamma".to_owned(), 3)));
    assert_eq!(sorted_entries(&map), [("delta".to_owned(), 4)]);
}

fn get_with_runs_only_for_present_keys<F: Family>() {
    let map: Map<F, u32, Vec<u32>> = ConcurrentMap::fresh();
    map.insert(1, vec![1, 2, 3]);
    assert_eq!(map.get_with(&1, |v| v.iter().sum::<u32>()), Some(6));
    let ran = Cell::new(false);
    assert_eq!(map.get_with(&2, |_| ran.set(true)), None);
    assert!(!ran.get(), "get_with ran its closure for an absent key");
}

fn get_or_insert_with_runs_only_when_absent<F: Family>() {
    let map: Map<F, u32, u32> = ConcurrentMap::fresh();
    let calls = Cell::new(0);
    let make = |v| {
        calls.set(calls.get() + 1);
        v
    };
    assert_eq!(map.get_or_insert_with(1, || make(10)), 10);
    assert_eq!(map.get_or_insert_with(1, || make(11)), 10);
    assert_eq!(calls.get(), 1);
    map.insert(2, 20);
    assert_eq!(map.get_or_insert_with(2, || make(21)), 20);
    assert_eq!(calls.get(), 1);
    assert_eq!(sorted_entries(&map), [(1, 10), (2, 20)]);
}

fn update_changes_in_place<F: Family>() {
    let map: Map<F, u32, String> = ConcurrentMap::fresh();
    map.insert(1, "a".into());
    assert_eq!(
        map.update(&1, |v| {
            v.push('b');
            v.len()
        }),
        Some(2)
    );
    assert_eq!(map.get(&1).as_deref(), Some("ab"));
    let ran = Cell::new(false);
    assert_eq!(map.update(&2, |_| ran.set(true)), None);
    assert!(!ran.get(), "update ran its closure for an absent key");
    assert_eq!(map.len(), 1, "update must not insert");
}

fn upsert_runs_exactly_one_closure<F: Family>() {
    let map: Map<F, &'static str, u32> = ConcurrentMap::fresh();
    let (inserts, updates) = (Cell::new(0), Cell::new(0));
    for _ in 0..3 {
        map.upsert(
            "k",
            || {
                inserts.set(inserts.get() + 1);
                1
            },
            |v| {
                updates.set(updates.get() + 1);
                *v *= 10;
            },
        );
    }
    assert_eq!((inserts.get(), updates.get()), (1, 2));
    assert_eq!(map.get("k"), Some(100));
}

fn compute_every_op<F: Family>() {
    let map: Map<F, u32, u32> = ConcurrentMap::fresh();
    let seen = Cell::new(None);
    // Absent key: Keep and Remove change nothing, Set inserts.
    assert_eq!(
        map.compute(1, |v| {
            seen.set(Some(v.copied()));
            Op::Keep
        }),
        Computed::Unchanged
    );
    assert_eq!(seen.get(), Some(None));
    assert_eq!(map.compute(1, |_| Op::Remove), Computed::Unchanged);
    assert!(map.is_empty());
    assert_eq!(map.compute(1, |_| Op::Set(10)), Computed::Inserted);
    assert_eq!(map.get(&1), Some(10));
    // Present key: the closure sees the value; Keep, Set and Remove.
    assert_eq!(
        map.compute(1, |v| {
            seen.set(Some(v.copied()));
            Op::Keep
        }),
        Computed::Unchanged
    );
    assert_eq!(seen.get(), Some(Some(10)));
    assert_eq!(map.get(&1), Some(10));
    assert_eq!(
        map.compute(1, |v| Op::Set(v.unwrap() + 1)),
        Computed::Replaced(10)
    );
    assert_eq!(map.get(&1), Some(11));
    assert_eq!(map.len(), 1);
    assert_eq!(map.compute(1, |_| Op::Remove), Computed::Removed(11));
    assert!(!map.contains_key(&1));
    assert_eq!(map.len(), 0);
}

fn remove_if_checks_then_removes<F: Family>() {
    let map: Map<F, u32, u32> = ConcurrentMap::fresh();
    map.insert(1, 10);
    assert_eq!(map.remove_if(&1, |v| *v == 11), None);
    assert_eq!(map.get(&1), Some(10));
    assert_eq!(map.remove_if(&1, |v| *v == 10), Some(10));
    assert!(map.is_empty());
    let ran = Cell::new(false);
    assert_eq!(
        map.remove_if(&1, |_| {
            ran.set(true);
            true
        }),
        None
    );
    assert!(!ran.get(), "remove_if ran its closure for an absent key");
}

fn compare_exchange_cases<F: Family>() {
    let map: Map<F, u32, String> = ConcurrentMap::fresh();
    assert_eq!(
        map.compare_exchange(&1, &"x".into(), "y".into()),
        Err(CompareExchangeError {
            current: None,
            new: "y".into()
        })
    );
    assert!(map.is_empty(), "a failed compare_exchange must not insert");
    map.insert(1, "a".into());
    assert_eq!(
        map.compare_exchange(&1, &"a".into(), "b".into()),
        Ok("a".into())
    );
    assert_eq!(
        map.compare_exchange(&1, &"a".into(), "c".into()),
        Err(CompareExchangeError {
            current: Some("b".into()),
            new: "c".into()
        })
    );
    assert_eq!(map.get(&1).as_deref(), Some("b"));
}

fn swap_never_inserts<F: Family>() {
    let map: Map<F, u32, u32> = ConcurrentMap::fresh();
    assert_eq!(map.swap(&1, 5), Err(5));
    assert!(map.is_empty());
    map.insert(1, 1);
    assert_eq!(map.swap(&1, 2), Ok(1));
    assert_eq!(map.get(&1), Some(2));
    assert_eq!(map.len(), 1);
}

fn retain_filters<F: Family>() {
    let map: Map<F, u32, u32> = Map::<F, u32, u32>::with_layout(8, 0);
    for i in 0..100 {
        map.insert(i, i + 1);
    }
    let mut visits = 0;
    map.retain(|k, v| {
        visits += 1;
        assert_eq!(*v, k + 1);
        k % 3 == 0
    });
    assert_eq!(visits, 100, "retain must visit every entry once");
    let expected: Vec<(u32, u32)> = (0..100)
        .filter(|k| k % 3 == 0)
        .map(|k| (k, k + 1))
        .collect();
    assert_eq!(sorted_entries(&map), expected);
    assert_eq!(map.len(), expected.len());
    map.retain(|_, _| false);
    assert!(map.is_empty());
}

/// For maps whose `retain` may change values (`retain_mut`).
fn retain_filters_and_mutates<F: Family>() {
    let map: Map<F, u32, u32> = Map::<F, u32, u32>::with_layout(8, 0);
    for i in 0..100 {
        map.insert(i, i);
    }
    let mut visits = 0;
    assert!(map.retain_mut(|k, v| {
        visits += 1;
        *v += 1000;
        k % 3 == 0
    }));
    assert_eq!(visits, 100, "retain must visit every entry once");
    let expected: Vec<(u32, u32)> = (0..100)
        .filter(|k| k % 3 == 0)
        .map(|k| (k, k + 1000))
        .collect();
    assert_eq!(sorted_entries(&map), expected);
    assert_eq!(map.len(), expected.len());
    map.retain(|_, _| false);
    assert!(map.is_empty());
}

fn clear_then_reuse<F: Family>() {
    let map: Map<F, u32, u32> = Map::<F, u32, u32>::with_layout(4, 0);
    for i in 0..500 {
        map.insert(i, i);
    }
    map.clear();
    assert_eq!(map.len(), 0);
    assert!(map.is_empty());
    assert_eq!(map.get(&7), None);
    assert_eq!(map.iter().count(), 0);
    assert_eq!(
        map.insert(7, 8),
        None,
        "a cleared key must be gone, not replaced"
    );
    assert_eq!(sorted_entries(&map), [(7, 8)]);
}

fn for_each_and_iter_see_every_entry_once<F: Family>() {
    let map: Map<F, u32, u32> = Map::<F, u32, u32>::with_layout(16, 0);
    for i in 0..1000 {
        map.insert(i, i * 2);
    }
    let mut seen = StdMap::new();
    map.for_each(|k, v| assert!(seen.insert(*k, *v).is_none(), "for_each saw {k} twice"));
    assert_eq!(
        seen,
        (0..1000).map(|i| (i, i * 2)).collect::<StdMap<_, _>>()
    );
    let mut seen = StdMap::new();
    for (k, v) in map.iter() {
        assert!(seen.insert(k, v).is_none(), "iter saw {k} twice");
    }
    assert_eq!(
        seen,
        (0..1000).map(|i| (i, i * 2)).collect::<StdMap<_, _>>()
    );
    // The iterator holds no lock between items: the loop may write to the map.
    for (k, _) in map.iter() {
        map.update(&k, |v| *v += 1);
    }
    assert_eq!(map.get(&999), Some(1999));
}

fn growth_from_one_tiny_shard<F: Family>() {
    let map: Map<F, u64, u64> = Map::<F, u64, u64>::with_layout(1, 0);
    for i in 0..5000 {
        assert_eq!(map.insert(i, i), None);
        assert_eq!(map.len(), i as usize + 1);
    }
    for i in 0..5000 {
        assert_eq!(map.get(&i), Some(i), "lost {i} while growing");
    }
    for i in (0..5000).step_by(2) {
        assert_eq!(map.remove(&i), Some(i));
    }
    for i in 0..5000 {
        assert_eq!(map.get(&i), (i % 2 == 1).then_some(i));
    }
    assert_eq!(map.len(), 2500);
}

fn from_iter_later_duplicates_win<F: Family>() {
    let map: Map<F, u32, &'static str> = [(1, "a"), (2, "b"), (1, "c"), (3, "d"), (2, "e")]
        .into_iter()
        .collect();
    assert_eq!(sorted_entries(&map), [(1, "c"), (2, "e"), (3, "d")]);
    assert_eq!(map.len(), 3);
}

fn clone_is_independent<F: Family>() {
    let map: Map<F, u32, String> = (0..50).map(|i| (i, i.to_string())).collect();
    let copy = map.clone();
    assert_eq!(sorted_entries(&copy), sorted_entries(&map));
    map.insert(100, "new".into());
    map.remove(&0);
    map.update(&1, |v| v.push('!'));
    copy.insert(200, "other".into());
    assert_eq!(copy.len(), 51);
    assert_eq!(copy.get(&0).as_deref(), Some("0"));
    assert_eq!(copy.get(&1).as_deref(), Some("1"));
    assert!(!copy.contains_key(&100));
    assert_eq!(map.get(&1).as_deref(), Some("1!"));
    assert!(!map.contains_key(&200));
    assert_eq!(map.len(), 50);
}

fn into_iter_moves_everything_out<F: Family>()
where
    Map<F, u32, String>: IntoIterator<Item = (u32, String)>,
{
    let map: Map<F, u32, String> = (0..300).map(|i| (i, format!("v{i}"))).collect();
    let mut entries: Vec<(u32, String)> = map.into_iter().collect();
    entries.sort();
    let expected: Vec<(u32, String)> = (0..300).map(|i| (i, format!("v{i}"))).collect();
    assert_eq!(entries, expected);
}

fn debug_formats_as_a_map<F: Family>() {
    let map: Map<F, u32, char> = ConcurrentMap::fresh();
    assert_eq!(format!("{map:?}"), "{}");
    map.insert(1, 'a');
    assert_eq!(format!("{map:?}"), "{1: 'a'}");
    map.insert(2, 'b');
    let text = format!("{map:?}");
    assert!(
        text == "{1: 'a', 2: 'b'}" || text == "{2: 'b', 1: 'a'}",
        "unexpected Debug output {text}"
    );
}

fn maps_are_send_and_sync<F: Family>() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Map<F, String, Vec<u8>>>();
}

/// What only `ShardedMap` has.
mod sharded_map {
    use super::*;
    use common::Sharded;

    #[test]
    fn retain_filters_and_mutates() {
        super::retain_filters_and_mutates::<Sharded>();
    }

    #[test]
    fn into_iter_moves_everything_out() {
        super::into_iter_moves_everything_out::<Sharded>();
    }

    use lanemap::{ShardedMap, ShardedMapBuilder, TryReserveError};
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, RandomState};

    #[test]
    fn builder_rounds_shards_up_to_a_power_of_two() {
        for (asked, got) in [
            (1, 1),
            (2, 2),
            (3, 4),
            (5, 8),
            (64, 64),
            (65, 128),
            (65536, 65536),
        ] {
            let map: ShardedMap<u8, u8> = ShardedMap::builder().shards(asked).build();
            assert_eq!(map.shard_count(), got, "shards({asked})");
            map.insert(1, 1);
            assert_eq!(map.get(&1), Some(1));
        }
    }

    #[test]
    fn builder_rejects_zero_and_too_many_shards() {
        for bad in [0, 65537] {
            let message = common::expect_panic("shards", || ShardedMapBuilder::new().shards(bad));
            assert!(message.contains("between 1 and 65536 shards"), "{message}");
        }
    }

    #[test]
    fn default_shard_count() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let expected = (4 * cores).next_power_of_two().min(65536);
        assert_eq!(ShardedMap::<u8, u8>::new().shard_count(), expected);
        assert_eq!(ShardedMap::<u8, u8>::default().shard_count(), expected);
        assert_eq!(
            ShardedMapBuilder::default().build::<u8, u8>().shard_count(),
            expected
        );
    }

    #[test]
    fn constructors_and_capacity() {
        assert_eq!(ShardedMap::<u64, u64>::new().len(), 0);
        assert!(ShardedMap::<u64, u64>::with_capacity(1000).capacity() >= 1000);
        let map: ShardedMap<u64, u64, RandomState> = ShardedMap::with_hasher(RandomState::new());
        map.insert(1, 2);
        assert_eq!(map.get(&1), Some(2));
        let map: ShardedMap<u64, u64, RandomState> =
            ShardedMap::with_capacity_and_hasher(300, RandomState::new());
        assert!(map.capacity() >= 300);
        let map: ShardedMap<u64, u64, BuildHasherDefault<DefaultHasher>> = ShardedMap::builder()
            .shards(2)
            .capacity(100)
            .hasher(BuildHasherDefault::default())
            .build();
        assert_eq!(map.shard_count(), 2);
        assert!(map.capacity() >= 100);
        // The map hashes with the hasher it was given.
        let fixed = BuildHasherDefault::<DefaultHasher>::default();
        assert_eq!(map.hasher().hash_one(42u64), fixed.hash_one(42u64));
    }

    #[test]
    fn reserve_and_try_reserve() {
        let map: ShardedMap<u64, u64> = ShardedMap::builder().shards(4).build();
        map.insert(1, 1);
        map.reserve(1000);
        assert!(map.capacity() >= 1001);
        assert!(map.try_reserve(5000).is_ok());
        assert!(map.capacity() >= 5001);
        assert_eq!(
            map.try_reserve(usize::MAX),
            Err(TryReserveError::CapacityOverflow)
        );
        assert_eq!(
            map.try_reserve(usize::MAX - 1),
            Err(TryReserveError::CapacityOverflow)
        );
        assert!(map.try_reserve(isize::MAX as usize).is_err());
        // A failed reservation leaves the map as it was.
        assert_eq!(sorted_entries(&map), [(1, 1)]);
        let message = common::expect_panic("reserve", || map.reserve(usize::MAX));
        assert!(message.contains("reserve"), "{message}");
        assert_eq!(map.get(&1), Some(1));
        assert!(!TryReserveError::CapacityOverflow.to_string().is_empty());
    }

    #[test]
    fn reserve_then_inserts_grow_nothing() {
        let map: ShardedMap<u64, u64> = ShardedMap::builder().shards(4).build();
        map.reserve(4000);
        let capacity = map.capacity();
        // With an even spread, the 1000 inserts fit in the room reserved for 4000.
        for i in 0..1000 {
            map.insert(i, i);
        }
        assert_eq!(map.capacity(), capacity);
    }

    #[test]
    fn shrink_to_fit_gives_memory_back() {
        let map: ShardedMap<u64, u64> = ShardedMap::builder().shards(8).build();
        for i in 0..20_000 {
            map.insert(i, i);
        }
        let full = map.capacity();
        assert!(full >= 20_000);
        for i in 10..20_000 {
            map.remove(&i);
        }
        // Removing shrinks each shard once it is less than an eighth full...
        assert!(
            map.capacity() < full / 4,
            "capacity {} of {full} after removing all but 10",
            map.capacity()
        );
        // ...and shrink_to_fit takes it down to the entries' needs.
        map.shrink_to_fit();
        assert!(
            map.capacity() < 1000,
            "capacity {} after shrink_to_fit",
            map.capacity()
        );
        assert!(map.capacity() >= 10);
        assert_eq!(
            sorted_entries(&map),
            (0..10).map(|i| (i, i)).collect::<Vec<_>>()
        );
        map.clear();
        map.shrink_to_fit();
        assert_eq!(map.capacity(), 0);
    }

    #[test]
    fn an_emptied_map_gives_its_memory_back() {
        let map: ShardedMap<u64, u64> = ShardedMap::builder().shards(4).build();
        for i in 0..50_000 {
            map.insert(i, i);
        }
        let full = map.capacity();
        for i in 0..49_990 {
            assert_eq!(map.remove(&i), Some(i));
        }
        assert!(
            map.capacity() <= 4 * 128,
            "remove: capacity {} of {full}",
            map.capacity()
        );
        // compute(Remove) and retain shrink too.
        for i in 0..50_000 {
            map.insert(i, i);
        }
        for i in 0..49_000 {
            assert_eq!(map.compute(i, |_| Op::Remove), Computed::Removed(i));
        }
        assert!(
            map.capacity() < full / 8,
            "compute: capacity {} of {full}",
            map.capacity()
        );
        for i in 0..50_000 {
            map.insert(i, i);
        }
        map.retain(|&k, _| k >= 49_000);
        assert_eq!(map.len(), 1000);
        assert!(
            map.capacity() < full / 8,
            "retain: capacity {} of {full}",
            map.capacity()
        );
    }

    #[test]
    fn removals_keep_the_room_that_was_asked_for() {
        // Reserved room survives inserts and removals...
        let reserved: ShardedMap<u64, u64> = ShardedMap::builder().shards(4).build();
        reserved.reserve(10_000);
        let room = reserved.capacity();
        for i in 0..100 {
            reserved.insert(i, i);
        }
        for i in 0..100 {
            reserved.remove(&i);
        }
        assert_eq!(reserved.capacity(), room, "reserve");
        // ...as does the room of `with_capacity` and the room `clear` keeps...
        let presized: ShardedMap<u64, u64> = ShardedMap::with_capacity(10_000);
        let room = presized.capacity();
        presized.insert(1, 1);
        presized.remove(&1);
        assert_eq!(presized.capacity(), room, "with_capacity");
        let cleared: ShardedMap<u64, u64> = ShardedMap::builder().shards(4).build();
        for i in 0..10_000 {
            cleared.insert(i, i);
        }
        cleared.clear();
        let room = cleared.capacity();
        cleared.insert(1, 1);
        cleared.remove(&1);
        assert_eq!(cleared.capacity(), room, "clear");
        // ...until shrink_to_fit gives it back.
        cleared.shrink_to_fit();
        assert_eq!(cleared.capacity(), 0);
    }

    #[test]
    fn clear_keeps_capacity() {
        let map: ShardedMap<u64, u64> = (0..1000).map(|i| (i, i)).collect();
        let capacity = map.capacity();
        map.clear();
        assert_eq!(map.capacity(), capacity);
    }

    /// A borrowed form of `Id` that is not `Borrow`ed: found through `Equivalent` alone.
    #[derive(Hash)]
    struct IdRef(u32);
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct Id(u32);
    impl lanemap::Equivalent<Id> for IdRef {
        fn equivalent(&self, key: &Id) -> bool {
            self.0 == key.0
        }
    }

    #[test]
    fn equivalent_lookups() {
        let map: ShardedMap<Id, u32> = ShardedMap::new();
        map.insert(Id(1), 10);
        assert_eq!(map.get(&IdRef(1)), Some(10));
        assert!(map.contains_key(&IdRef(1)));
        assert!(!map.contains_key(&IdRef(2)));
        assert_eq!(map.update(&IdRef(1), |v| *v + 1), Some(11));
        assert_eq!(map.remove(&IdRef(1)), Some(10));
        // Tuple of strs against (String, String) keys.
        let pairs: ShardedMap<(String, String), u8> = ShardedMap::new();
        pairs.insert(("a".into(), "b".into()), 1);
        assert_eq!(pairs.get(&("a".to_owned(), "b".to_owned())), Some(1));
    }

    #[test]
    fn keys_and_values() {
        let map: ShardedMap<u32, String> = (0..100).map(|i| (i, format!("v{i}"))).collect();
        let mut keys: Vec<u32> = map.keys().collect();
        keys.sort();
        assert_eq!(keys, (0..100).collect::<Vec<_>>());
        let mut values: Vec<String> = map.values().collect();
        values.sort();
        let mut expected: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
        expected.sort();
        assert_eq!(values, expected);
        // Fused: None stays None.
        let mut iter = map.iter();
        for _ in 0..100 {
            assert!(iter.next().is_some());
        }
        assert!(iter.next().is_none());
        assert!(iter.next().is_none());
        let mut keys = map.keys();
        keys.by_ref().for_each(drop);
        assert!(keys.next().is_none());
        assert!(!format!("{:?}", map.iter()).is_empty());
    }

    #[test]
    fn into_iter_knows_its_length() {
        let map: ShardedMap<u32, u32> = ShardedMap::builder().shards(4).build();
        for i in 0..100 {
            map.insert(i, i);
        }
        let mut iter = map.into_iter();
        assert_eq!(iter.len(), 100);
        iter.next();
        assert_eq!(iter.size_hint(), (99, Some(99)));
        assert_eq!(iter.by_ref().count(), 99);
        assert_eq!(iter.next(), None);
    }

    #[test]
    fn extend_owned_shared_and_borrowed() {
        let mut map: ShardedMap<u32, u32> = ShardedMap::new();
        map.extend([(1, 1), (2, 2), (1, 10)]);
        (&map).extend([(3, 3)]);
        map.extend([(&4, &4)]);
        assert_eq!(sorted_entries(&map), [(1, 10), (2, 2), (3, 3), (4, 4)]);
    }

    #[test]
    fn clone_keeps_hasher_and_layout() {
        let map: ShardedMap<u32, u32> = ShardedMap::builder().shards(16).build();
        map.insert(1, 1);
        let copy = map.clone();
        assert_eq!(copy.shard_count(), 16);
        assert_eq!(copy.hasher().hash_one(5u32), map.hasher().hash_one(5u32));
        assert_eq!(copy.get(&1), Some(1));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip() {
        let map: ShardedMap<String, Vec<u32>> =
            (0..20).map(|i| (format!("k{i}"), vec![i; 2])).collect();
        let json = serde_json::to_string(&map).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value.as_object().map(|o| o.len()), Some(20), "{json}");
        assert_eq!(value["k3"], serde_json::json!([3, 3]));
        let back: ShardedMap<String, Vec<u32>> = serde_json::from_str(&json).unwrap();
        assert_eq!(sorted_entries(&back), sorted_entries(&map));
        assert_eq!(
            serde_json::to_string(&ShardedMap::<u8, u8>::new()).unwrap(),
            "{}"
        );
        // Later duplicates win, as in std.
        let dup: ShardedMap<String, u8> = serde_json::from_str(r#"{"a":1,"a":2}"#).unwrap();
        assert_eq!(sorted_entries(&dup), [("a".to_owned(), 2)]);
        assert!(serde_json::from_str::<ShardedMap<String, u8>>("[1]").is_err());
    }

    #[cfg(feature = "rayon")]
    #[test]
    fn rayon_collect_extend_and_visit() {
        use rayon::prelude::*;
        use std::sync::atomic::{AtomicU64, Ordering};
        let map: ShardedMap<u64, u64> = (0..2000u64).into_par_iter().map(|i| (i, i)).collect();
        assert_eq!(map.len(), 2000);
        let mut map = map;
        map.par_extend((2000..3000u64).into_par_iter().map(|i| (i, i)));
        assert_eq!(
            sorted_entries(&map),
            (0..3000).map(|i| (i, i)).collect::<Vec<_>>()
        );
        let (sum, count) = (AtomicU64::new(0), AtomicU64::new(0));
        map.par_for_each(|k, v| {
            assert_eq!(k, v);
            sum.fetch_add(*v, Ordering::Relaxed);
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.into_inner(), 3000);
        assert_eq!(sum.into_inner(), (0..3000).sum::<u64>());
    }

    #[test]
    fn hasher_is_used_for_shard_choice_only_through_hash() {
        // A hasher that sends every key to one hash: everything collides, all still works.
        #[derive(Default, Clone)]
        struct Constant;
        impl BuildHasher for Constant {
            type Hasher = ConstantHasher;
            fn build_hasher(&self) -> ConstantHasher {
                ConstantHasher
            }
        }
        struct ConstantHasher;
        impl Hasher for ConstantHasher {
            fn finish(&self) -> u64 {
                7
            }
            fn write(&mut self, _: &[u8]) {}
        }
        let map: ShardedMap<u32, u32, Constant> =
            ShardedMap::builder().shards(8).hasher(Constant).build();
        for i in 0..200 {
            map.insert(i, i);
        }
        for i in 0..200 {
            assert_eq!(map.get(&i), Some(i));
        }
        for i in 0..100 {
            map.remove(&i);
        }
        assert_eq!(
            sorted_entries(&map),
            (100..200).map(|i| (i, i)).collect::<Vec<_>>()
        );
    }
}
