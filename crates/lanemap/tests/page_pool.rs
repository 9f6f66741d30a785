//! The pool of freed tables' pages (Linux): new tables take them, their old bytes never show
//! through as entries, and the pool stays within its bound.
//!
//! A binary of its own: the pool is process-wide, so no other test may create or free tables
//! meanwhile; and its tests take turns (`SERIAL`).

#![cfg(all(target_os = "linux", not(miri)))]

use lanemap::HashMap;
use std::sync::{Arc, Mutex};

/// Held by each test: the first counts the pool's bytes exactly.
static SERIAL: Mutex<()> = Mutex::new(());

/// One shard with room for 2^16 entries: a table of about 1.9 MiB (16-byte entries), mapped from the kernel.
fn one_shard<V>() -> HashMap<u64, V> {
    HashMap::with_shards(1, 1 << 16, Default::default())
}

#[test]
fn freed_tables_pages_are_reused_and_bounded() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    lanemap::release_pooled_table_pages();
    assert_eq!(lanemap::pooled_table_bytes(), 0);

    // A table full of entries, freed: its pages go to the pool.
    let first = one_shard::<u64>();
    for key in 0..1 << 16 {
        first.insert(key, !key);
    }
    drop(first);
    let pooled = lanemap::pooled_table_bytes();
    assert!(
        pooled >= 3 << 19,
        "a freed 1.9 MiB table left {pooled} bytes in the pool"
    );

    // The tables of a growing map take them, and start empty all the same. (A table sized up
    // front does not: it wants huge pages at once, which pooled pages are not.)
    // Values hold a token, so that a value dropped twice, or old bytes dropped as a value,
    // show in its count.
    const KEYS: u64 = 1 << 18;
    let token = Arc::new(());
    let second: HashMap<u64, (u64, Arc<()>)> = HashMap::with_shards(1, 0, Default::default());
    assert!(second.is_empty());
    for key in (0..KEYS).step_by(3) {
        second.insert(key, (key, Arc::clone(&token)));
    }
    let left = lanemap::pooled_table_bytes();
    assert!(
        left < pooled,
        "growing tables took nothing from the pool ({left} of {pooled} left)"
    );
    let inserted = (0..KEYS).step_by(3).count();
    assert_eq!(second.len(), inserted);
    assert_eq!(second.iter().count(), inserted);
    for key in 0..KEYS {
        let expected = (key % 3 == 0).then_some(key);
        assert_eq!(second.get_with(&key, |value| value.0), expected);
    }
    assert_eq!(Arc::strong_count(&token), inserted + 1);
    drop(second);
    // Every value dropped once, and nothing from the old bytes.
    assert_eq!(Arc::strong_count(&token), 1);

    // The pool keeps at most 64 MiB, however much is freed.
    let maps: Vec<_> = (0..40).map(|_| one_shard::<u64>()).collect();
    drop(maps);
    let pooled = lanemap::pooled_table_bytes();
    assert!(pooled > 0 && pooled <= 64 << 20, "{pooled} bytes pooled");

    lanemap::release_pooled_table_pages();
    assert_eq!(lanemap::pooled_table_bytes(), 0);
}

/// Threads that grow, check and drop maps side by side, so that tables take and give back pooled
/// pages concurrently: no two tables ever get the same pages (each map keeps exactly its own
/// entries), and every value is dropped once.
#[test]
fn concurrent_maps_share_the_pool_safely() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let token = Arc::new(());
    let threads: Vec<_> = (0..4_u64)
        .map(|thread| {
            let token = Arc::clone(&token);
            std::thread::spawn(move || {
                for round in 0..6_u64 {
                    let seed = (thread << 32) | (round << 20);
                    // Grown from empty: several tables per shard, each freed as it is outgrown.
                    let map: HashMap<u64, (u64, Arc<()>)> =
                        HashMap::with_shards(2, 0, Default::default());
                    let keys = 150_000 + 10_000 * round;
                    for key in seed..seed + keys {
                        map.insert(key, (!key, Arc::clone(&token)));
                    }
                    assert_eq!(map.len() as u64, keys);
                    for key in seed..seed + keys {
                        assert_eq!(map.get_with(&key, |value| value.0), Some(!key));
                    }
                    assert!(map.iter().all(|(key, value)| value.0 == !key));
                    assert_eq!(map.iter().count() as u64, keys);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "a value was dropped twice or not at all"
    );
    assert!(lanemap::pooled_table_bytes() <= 64 << 20);
}
