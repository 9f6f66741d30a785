//! shuttle drives maps built on shuttle's primitives, with the linearizability checker as the
//! oracle, under its random and PCT schedulers.
//!
//! ```sh
//! RUSTFLAGS="--cfg shuttle" cargo test -p lanemap-check --release --test shuttle
//! ```
//!
//! `LANEMAP_SHUTTLE_ITERS` sets the schedules per scheduler (default 2000).
//!
//! Under this cfg `lanemap::sync` hands the maps shuttle's locks and thread-locals, so shuttle
//! interleaves `ShardedMap`'s operations at every lock. (Atomics stay std's: shuttle cannot
//! preempt between atomic operations, which is why lock-free code is left to loom.) The
//! reference [`LockedMap`] is checked too, and the broken maps must be caught.
#![cfg(shuttle)]

use lanemap::ShardedMap;
use lanemap_check::broken::{CheckThenActMap, LockedMap, LostUpdateMap};
use lanemap_check::workload::Mix;
use lanemap_check::{CheckedMap, Clock, Event, History, check, maps::apply};
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// A fixed hasher: the same shards, hence the same locks, whenever shuttle replays a schedule.
type Sharded = ShardedMap<u64, u64, BuildHasherDefault<DefaultHasher>>;

fn iterations() -> usize {
    std::env::var("LANEMAP_SHUTTLE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// One execution: three tasks, 12 operations each on 2 keys, then the checker.
fn scenario<M: CheckedMap + 'static>() {
    let map = Arc::new(M::with_capacity(0));
    let clock = Arc::new(Clock::logical());
    let tasks: Vec<_> = (0..3u32)
        .map(|t| {
            let (map, clock) = (map.clone(), clock.clone());
            shuttle::thread::spawn(move || {
                // Fixed per task: shuttle's schedule is the only nondeterminism.
                let mut rng = fastrand::Rng::with_seed(u64::from(t) + 1);
                (0..12)
                    .map(|_| {
                        let (key, call) = (rng.u64(0..2), Mix::ALL_OPS.call(&mut rng));
                        let start = clock.now();
                        let ret = apply(&*map, key, call);
                        let end = clock.now();
                        Event {
                            thread: t,
                            key,
                            call,
                            ret,
                            start,
                            end,
                        }
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut history = History::default();
    for task in tasks {
        history.extend(task.join().unwrap());
    }
    if let Err(violation) = check(&history) {
        panic!("{violation}");
    }
}

#[test]
fn sharded_map_random_scheduler() {
    shuttle::check_random(scenario::<Sharded>, iterations());
    println!(
        "SHUTTLE map=ShardedMap scheduler=random schedules={} violations=0",
        iterations()
    );
}

#[test]
fn sharded_map_pct_scheduler() {
    shuttle::check_pct(scenario::<Sharded>, iterations(), 3);
    println!(
        "SHUTTLE map=ShardedMap scheduler=pct schedules={} violations=0",
        iterations()
    );
}

/// lanemap's lock-free-read map: shuttle interleaves its writers at their shard locks.
type Lockfree = lanemap::HashMap<u64, u64, BuildHasherDefault<DefaultHasher>>;

#[test]
fn hash_map_random_scheduler() {
    shuttle::check_random(scenario::<Lockfree>, iterations());
    println!(
        "SHUTTLE map=HashMap scheduler=random schedules={} violations=0",
        iterations()
    );
}

#[test]
fn hash_map_pct_scheduler() {
    shuttle::check_pct(scenario::<Lockfree>, iterations(), 3);
    println!(
        "SHUTTLE map=HashMap scheduler=pct schedules={} violations=0",
        iterations()
    );
}

#[test]
fn locked_map_random_scheduler() {
    shuttle::check_random(scenario::<LockedMap>, iterations());
    println!(
        "SHUTTLE map=LockedMap scheduler=random schedules={} violations=0",
        iterations()
    );
}

#[test]
fn locked_map_pct_scheduler() {
    shuttle::check_pct(scenario::<LockedMap>, iterations(), 3);
    println!(
        "SHUTTLE map=LockedMap scheduler=pct schedules={} violations=0",
        iterations()
    );
}

fn must_fail(name: &str, run: impl FnOnce()) {
    let caught = catch_unwind(AssertUnwindSafe(run)).is_err();
    assert!(caught, "shuttle missed the bug in {name}");
    println!("SHUTTLE teeth: {name} caught");
}

#[test]
fn catches_the_broken_maps() {
    must_fail("CheckThenActMap (random)", || {
        shuttle::check_random(scenario::<CheckThenActMap>, 2000)
    });
    must_fail("LostUpdateMap (random)", || {
        shuttle::check_random(scenario::<LostUpdateMap>, 2000)
    });
    must_fail("CheckThenActMap (pct)", || {
        shuttle::check_pct(scenario::<CheckThenActMap>, 2000, 3)
    });
    must_fail("LostUpdateMap (pct)", || {
        shuttle::check_pct(scenario::<LostUpdateMap>, 2000, 3)
    });
}
