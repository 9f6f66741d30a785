//! Ports of the trusted suites' invariants, run on every lanemap map through [`CheckedMap`]:
//! the JDK's MapCheck (present and absent keys) and MapLoops (random walk, 60% insert, 2%
//! remove, here with the linearizability checker as the oracle), and Go `sync.Map`'s
//! TestConcurrentRange (1024 keys, many iteration passes under concurrent writes).
//!
//! `LANEMAP_RANGE_PASSES` sets the iteration passes (default 256; Go runs 1024).

use lanemap::ShardedMap;
use lanemap_check::broken::{DoubleVisitMap, LockedMap, LostUpdateMap};
use lanemap_check::model::VALUES;
use lanemap_check::workload::Mix;
use lanemap_check::{Call, CheckedMap, Clock, Event, History, check, maps::apply};
use std::collections::HashSet;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};

type Sharded = ShardedMap<u64, u64>;
type Lockfree = lanemap::HashMap<u64, u64>;

// ---- MapCheck: present and absent keys, sequentially ----

fn map_check<M: CheckedMap>() {
    let n: u64 = if cfg!(miri) { 64 } else { 1 << 14 };
    let map = M::with_capacity(0);
    for k in 0..n {
        assert_eq!(map.insert(k, k * 3), None, "insert of absent key {k}");
    }
    assert_eq!(map.len(), n as usize);
    for k in 0..n {
        assert_eq!(map.get(k), Some(k * 3), "present key {k}");
        assert_eq!(map.get(n + k), None, "absent key {}", n + k);
    }
    for k in 0..n {
        assert_eq!(map.insert(k, k), Some(k * 3), "replace of present key {k}");
    }
    assert_eq!(map.get_or_insert_with(n, || 7), 7);
    assert_eq!(map.get_or_insert_with(n, || unreachable!()), 7);
    assert_eq!(map.remove(n), Some(7));
    for k in (0..n).step_by(2) {
        assert_eq!(map.remove(k), Some(k), "remove of present key {k}");
        assert_eq!(map.remove(k), None, "remove of removed key {k}");
        assert_eq!(map.remove(n + k), None, "remove of absent key {}", n + k);
    }
    assert_eq!(map.len(), (n / 2) as usize);
    let (mut count, mut sum) = (0, 0);
    map.for_each(|k, v| {
        assert_eq!(k % 2, 1);
        assert_eq!(k, v);
        count += 1;
        sum += v;
    });
    assert_eq!(count, n / 2);
    assert_eq!(sum, (1..n).step_by(2).sum());
    for k in (1..n).step_by(2) {
        assert_eq!(map.remove(k), Some(k));
    }
    assert!(map.is_empty());
}

#[test]
fn map_check_sharded() {
    map_check::<Sharded>();
}

#[test]
fn map_check_hash_map() {
    map_check::<Lockfree>();
}

#[test]
fn map_check_reference() {
    map_check::<LockedMap>();
}

// ---- MapLoops: random walk, 60% insert, 2% remove, checked for linearizability ----

/// The next key of a thread's walk: a shift-xor scramble of the previous one.
fn walk(r: u64) -> u64 {
    let mut r = r;
    r ^= r << 6;
    r ^= r >> 21;
    r ^= r << 7;
    r
}

fn map_loops<M: CheckedMap>(threads: usize, keys: u64, rounds: usize) -> Result<usize, String> {
    let mut checked = 0;
    for round in 0..rounds {
        let map = M::with_capacity(0);
        let clock = Clock::real();
        let barrier = Barrier::new(threads);
        let mut history = History::default();
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads as u64)
                .map(|t| {
                    let (map, clock, barrier) = (&map, &clock, &barrier);
                    s.spawn(move || {
                        let mut rng = fastrand::Rng::with_seed(round as u64 * 64 + t);
                        let mut r = rng.u64(1..u64::MAX);
                        let mut events = Vec::with_capacity(2000);
                        barrier.wait();
                        for _ in 0..2000 / threads {
                            r = walk(r);
                            let key = r % keys;
                            let call = match r % 100 {
                                0..2 => Call::Remove,
                                2..62 => Mix::INSERT_HEAVY.call(&mut rng).max_write(r % VALUES),
                                _ => Call::Get,
                            };
                            let start = clock.now();
                            let ret = apply(map, key, call);
                            let end = clock.now();
                            events.push(Event {
                                thread: t as u32,
                                key,
                                call,
                                ret,
                                start,
                                end,
                            });
                        }
                        events
                    })
                })
                .collect();
            for w in workers {
                history.extend(w.join().unwrap());
            }
        });
        match check(&history) {
            Ok(c) => checked += c.ops,
            Err(v) => return Err(format!("round {round}:\n{v}")),
        }
        let mut seen = 0;
        map.for_each(|k, _| {
            assert!(k < keys);
            seen += 1;
        });
        assert_eq!(seen, map.len());
    }
    Ok(checked)
}

/// Picks a writing operation for MapLoops' "put" share: mostly `insert`, sometimes the others.
trait MaxWrite {
    fn max_write(self, v: u64) -> Call;
}

impl MaxWrite for Call {
    fn max_write(self, v: u64) -> Call {
        match self {
            Call::Get | Call::Remove | Call::RemoveIf(_) => Call::Insert(v),
            other => other,
        }
    }
}

#[test]
fn map_loops_sharded() {
    let rounds = if cfg!(debug_assertions) { 20 } else { 200 };
    for (threads, keys) in [(2, 64), (4, 512), (8, 4096)] {
        let ops = map_loops::<Sharded>(threads, keys, rounds).unwrap_or_else(|e| panic!("{e}"));
        println!("MapLoops ShardedMap: {threads} threads, {keys} keys: {ops} ops linearizable");
    }
}

#[test]
fn map_loops_hash_map() {
    let rounds = if cfg!(debug_assertions) { 20 } else { 200 };
    for (threads, keys) in [(2, 64), (4, 512), (8, 4096)] {
        let ops = map_loops::<Lockfree>(threads, keys, rounds).unwrap_or_else(|e| panic!("{e}"));
        println!("MapLoops HashMap: {threads} threads, {keys} keys: {ops} ops linearizable");
    }
}

#[test]
fn map_loops_catches_a_lost_update() {
    let caught = (0..50).any(|_| map_loops::<LostUpdateMap>(2, 2, 50).is_err());
    assert!(caught, "MapLoops missed the lost update");
}

// ---- Go's TestConcurrentRange ----

fn passes() -> usize {
    let default = if cfg!(miri) { 4 } else { 256 };
    std::env::var("LANEMAP_RANGE_PASSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Keys `1..=1024` stay present while writers keep storing multiples of each key; every
/// iteration pass must see each key exactly once, with a multiple of the key as its value.
fn concurrent_range<M: CheckedMap>(passes: usize) -> Result<(), String> {
    const N: u64 = 1024;
    let map = M::with_capacity(0);
    for k in 1..=N {
        map.insert(k, k);
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (map, stop) = (&map, &stop);
            s.spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t);
                while !stop.load(Ordering::Relaxed) {
                    let k = rng.u64(1..=N);
                    let m = rng.u64(1..1024);
                    if rng.bool() {
                        map.insert(k, k * m);
                    } else {
                        map.update(k, |v| *v = k * m);
                    }
                }
            });
        }
        let result = (0..passes).try_for_each(|pass| {
            let mut seen = HashSet::new();
            let mut error = None;
            map.for_each(|k, v| {
                if !seen.insert(k) {
                    error.get_or_insert(format!("pass {pass}: key {k} seen twice"));
                }
                if v % k != 0 {
                    error.get_or_insert(format!("pass {pass}: key {k} with value {v}"));
                }
            });
            if let Some(e) = error {
                return Err(e);
            }
            if seen.len() as u64 != N {
                return Err(format!("pass {pass}: saw {} of {N} keys", seen.len()));
            }
            Ok(())
        });
        stop.store(true, Ordering::Relaxed);
        result
    })
}

#[test]
fn concurrent_range_sharded() {
    let passes = passes();
    concurrent_range::<Sharded>(passes).unwrap_or_else(|e| panic!("{e}"));
    println!("ConcurrentRange ShardedMap: {passes} passes over 1024 keys under 2 writers");
}

#[test]
fn concurrent_range_hash_map() {
    let passes = passes();
    concurrent_range::<Lockfree>(passes).unwrap_or_else(|e| panic!("{e}"));
    println!("ConcurrentRange HashMap: {passes} passes over 1024 keys under 2 writers");
}

#[test]
fn concurrent_range_catches_a_double_visit() {
    let err = concurrent_range::<DoubleVisitMap>(1000).expect_err("missed the double visit");
    assert!(err.contains("seen twice"), "{err}");
}
