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
    // An emptied shard goes back to its one-group table (7 slots, 5 usable, fewer if some hold
    // tombstones).
    assert!(grown > 100, "grown to {grown}");
    assert!(
        map.capacity() <= map.shard_count() * 5,
        "{}",
        map.capacity()
    );
    assert!(map.capacity() > 0);
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

#[test]
fn removed_values_wait_for_at_most_a_bounded_number_of_later_removals() {
    use std::sync::Arc;
    let shards = 8;
    let map: HashMap<u64, Arc<()>> = HashMap::with_shards(shards, 0, DefaultHashBuilder::default());
    let value = Arc::new(());
    let (n, kept) = if cfg!(miri) {
        (400, 40)
    } else {
        (20_000, 2_000)
    };
    for i in 0..n {
        map.insert(i, Arc::clone(&value));
    }
    // Each `remove` hands back a clone, dropped at once; the map's own copy waits for
    // reclamation: queued in its shard (fewer than 32 a shard), then in this thread's
    // reclamation batch, which is handed on once it holds 32 objects (`reclaim::BATCH_SIZE`),
    // each a group of 32 removed values at most. (The bound used to allow 4 groups in the
    // batch, from when batches held 4 objects; with 32, a run held 432 values now and then.)
    for i in kept..n {
        assert!(map.remove(&i).is_some());
    }
    let waiting = Arc::strong_count(&value) - 1 - kept as usize;
    assert!(
        waiting < shards * 32 + 32 * 32,
        "{waiting} removed values still held"
    );
    map.flush_removed();
    assert_eq!(Arc::strong_count(&value), 1 + kept as usize);
    map.clear();
    map.flush_removed();
    assert_eq!(Arc::strong_count(&value), 1);
}

/// A key replaced (or removed) while its shard migrates keeps a MOVED mark in the old table,
/// which lookups starting there follow into the replaced node to compare its key: that node
/// must outlive the migration even if its removal is flushed. (Under Miri, freeing it early is
/// a use of freed memory: the `String` key's buffer.)
#[test]
fn nodes_replaced_during_a_migration_stay_readable_until_it_ends() {
    let map: HashMap<String, u64> = HashMap::with_shards(1, 0, DefaultHashBuilder::default());
    let key = |i: u64| format!("key {i}");
    let mut i = 0;
    // Grow until a migration starts from a table of at least 4 chunks (more than 200 entries),
    // so that it is still running after the next few writes.
    loop {
        let before = map.capacity();
        map.insert(key(i), i);
        i += 1;
        if map.capacity() != before && before >= 200 {
            break;
        }
    }
    for j in 0..3 {
        assert_eq!(map.insert(key(j), j + 1000), Some(j));
        assert_eq!(map.remove(&key(j + 10)), Some(j + 10));
        map.flush_removed();
        for k in 0..i {
            let expected = match k {
                k if k <= j => Some(k + 1000),
                k if (10..=10 + j).contains(&k) => None,
                k => Some(k),
            };
            assert_eq!(map.get(&key(k)), expected, "key {k} after round {j}");
        }
    }
}

/// Entries live in the table, and a removed or replaced entry's slot is reused once no guard
/// can hold it. A reference taken under a pin must stay intact however much the map churns
/// meanwhile; once the pin is gone, churn reuses the vacated slots. (Under Miri, a slot reused
/// too early is a use of freed memory, the old `String`'s buffer, or a write to memory a live
/// reference points to.)
#[test]
fn a_pinned_reference_outlives_churn_and_its_slot_is_reused_after() {
    let map: HashMap<u64, String> = HashMap::with_shards(1, 0, DefaultHashBuilder::default());
    let (live, rounds) = if cfg!(miri) { (20, 200) } else { (200, 20_000) };
    for i in 0..live {
        map.insert(i, format!("value {i}"));
    }
    let pinned = map.pin();
    let held: Vec<&String> = (0..live).map(|i| pinned.get(&i).unwrap()).collect();
    // Remove and replace every held key, then churn other keys: each write vacates a slot.
    for i in 0..live {
        if i % 2 == 0 {
            map.remove(&i);
        } else {
            map.insert(i, format!("new {i}"));
        }
    }
    for round in 0..rounds {
        let key = live + round % live;
        map.insert(key, format!("churn {round}"));
        map.remove(&key);
        if round % 64 == 0 {
            map.flush_removed();
        }
    }
    for (i, value) in held.iter().enumerate() {
        assert_eq!(**value, format!("value {i}"), "held reference {i} changed");
    }
    drop(pinned);
    // No guard holds the vacated slots now: churn reuses them.
    map.flush_removed();
    for round in 0..rounds {
        let key = 2 * live + round % live;
        map.insert(key, format!("churn {round}"));
        map.remove(&key);
        if round % 64 == 0 {
            map.flush_removed();
        }
    }
    for i in 0..live {
        let expected = (i % 2 == 1).then(|| format!("new {i}"));
        assert_eq!(map.get(&i), expected);
    }
}
