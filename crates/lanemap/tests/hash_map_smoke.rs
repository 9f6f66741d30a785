//! Quick end-to-end checks of `HashMap` growth, shrinking and migration, against std's map.

use lanemap::{DefaultHashBuilder, HashMap};
use std::collections::HashMap as StdMap;

#[test]
fn grows_and_shrinks_through_many_migrations() {
    let map: HashMap<u64, u64> = HashMap::with_shards(2, 0, DefaultHashBuilder::default());
    let mut model = StdMap::new();
    let n = if cfg!(miri) { 300 } else { 20_000 };
    for i in 0..n {
        assert_eq!(map.insert(i, i * 2), model.insert(i, i * 2));
        if i % 3 == 0 {
            assert_eq!(map.remove(&(i / 2)), model.remove(&(i / 2)));
        }
        assert_eq!(map.len(), model.len());
    }
    for i in 0..n {
        assert_eq!(map.get(&i), model.get(&i).copied(), "key {i}");
    }
    let mut seen: Vec<(u64, u64)> = map.iter().collect();
    seen.sort_unstable();
    let mut expected: Vec<(u64, u64)> = model.iter().map(|(&k, &v)| (k, v)).collect();
    expected.sort_unstable();
    assert_eq!(seen, expected);
    let grown = map.capacity();
    for i in 0..n {
        assert_eq!(map.remove(&i), model.remove(&i));
    }
    assert!(map.is_empty());
    // An emptied shard goes back to its one-group table (7 slots, 5 usable).
    assert!(grown > 100, "grown to {grown}");
    assert_eq!(map.capacity(), map.shard_count() * 5);
}

#[test]
fn readers_see_every_key_present_throughout_while_a_writer_grows_the_table() {
    let map: HashMap<u64, u64> = HashMap::with_shards(1, 0, DefaultHashBuilder::default());
    let stable = if cfg!(miri) { 50 } else { 2_000 };
    for i in 0..stable {
        map.insert(i, i);
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in stable..stable * 20 {
                map.insert(i, i);
                if i % 2 == 0 {
                    map.remove(&i);
                }
            }
        });
        for _ in 0..4 {
            for i in 0..stable {
                assert_eq!(map.get(&i), Some(i));
            }
            let pinned = map.pin();
            let mut count = 0;
            let mut seen = std::collections::HashSet::new();
            for (k, v) in pinned.iter() {
                assert_eq!(k, v);
                assert!(seen.insert(*k), "key {k} seen twice");
                if *k < stable {
                    count += 1;
                }
            }
            assert_eq!(count, stable);
        }
    });
}
