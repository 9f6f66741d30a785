//! Random workloads and the real-thread driver that records their histories.

use crate::checker::{self, Checked, Violation};
use crate::history::{Call, Clock, Event, History};
use crate::maps::{CheckedMap, apply};
use crate::model::VALUES;
use std::sync::Barrier;
use std::sync::atomic::{Ordering, fence};

/// How often each kind of operation is drawn, in percent (`get + insert + remove == 100`).
///
/// "Insert" stands for every operation that may write a value: `insert` itself (40%),
/// `get_or_insert_with` (15%), `update` (15%), `compute` (10%), `compare_exchange` (10%) and
/// `swap` (10%). "Remove" is `remove` (70%) and `remove_if` (30%).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// A short name for reports.
    pub name: &'static str,
    /// Percent of `get`.
    pub get: u32,
    /// Percent of the writing operations.
    pub insert: u32,
    /// Percent of the removing operations.
    pub remove: u32,
}

impl Mix {
    /// 50% insert, 20% remove, 30% get.
    pub const MIXED: Mix = Mix {
        name: "50/20/30",
        get: 30,
        insert: 50,
        remove: 20,
    };
    /// 90% get, 8% insert, 2% remove.
    pub const READ_MOSTLY: Mix = Mix {
        name: "90% get",
        get: 90,
        insert: 8,
        remove: 2,
    };
    /// 60% insert, 2% remove, 38% get (the JDK's MapLoops).
    pub const INSERT_HEAVY: Mix = Mix {
        name: "60% ins/2% rm",
        get: 38,
        insert: 60,
        remove: 2,
    };
    /// Every operation often: a third each.
    pub const ALL_OPS: Mix = Mix {
        name: "thirds",
        get: 34,
        insert: 33,
        remove: 33,
    };
    /// The mixes the stress driver cycles through.
    pub const STRESS: [Mix; 3] = [Mix::MIXED, Mix::READ_MOSTLY, Mix::INSERT_HEAVY];

    /// Draws one operation with its arguments.
    pub fn call(&self, rng: &mut fastrand::Rng) -> Call {
        let value = |rng: &mut fastrand::Rng| rng.u64(0..VALUES);
        let r = rng.u32(0..100);
        if r < self.get {
            Call::Get
        } else if r < self.get + self.insert {
            match rng.u32(0..100) {
                0..40 => Call::Insert(value(rng)),
                40..55 => Call::GetOrInsertWith(value(rng)),
                55..70 => Call::Update(rng.u64(1..VALUES)),
                70..80 => Call::Compute(value(rng)),
                80..90 => Call::CompareExchange {
                    current: value(rng),
                    new: value(rng),
                },
                _ => Call::Swap(value(rng)),
            }
        } else if rng.u32(0..100) < 70 {
            Call::Remove
        } else {
            Call::RemoveIf(value(rng))
        }
    }
}

/// One stress configuration.
#[derive(Debug, Clone, Copy)]
pub struct Stress {
    /// Threads running at once.
    pub threads: usize,
    /// Keys are drawn from `0..keys`.
    pub keys: u64,
    /// The operation mix.
    pub mix: Mix,
    /// Operations per round (over all threads); each round uses a fresh map.
    pub ops_per_round: usize,
    /// Initial capacity of each round's map: small, so that it grows during the round.
    pub capacity: usize,
}

/// Runs one round on real threads and returns its history.
///
/// The threads start together at a barrier and run `ops_per_round / threads` random operations
/// each, reading the shared clock just before each call and just after each return.
pub fn run_round<M: CheckedMap>(map: &M, cfg: &Stress, seed: u64) -> History {
    // Under Miri, "returned before the other was called" must mean happens-before, not
    // virtual wall time: its weak-memory emulation may legally let a load miss a store that
    // no synchronization orders before it, however long ago that store ran. A shared SeqCst
    // counter makes each reading synchronize with the earlier ones.
    let clock = if cfg!(miri) {
        Clock::logical()
    } else {
        Clock::real()
    };
    let barrier = Barrier::new(cfg.threads);
    let per_thread = cfg.ops_per_round.div_ceil(cfg.threads);
    let mut history = History::default();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..cfg.threads)
            .map(|t| {
                let (clock, barrier) = (&clock, &barrier);
                s.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(
                        seed ^ (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    );
                    // Draw the operations first so that drawing adds no gap between them.
                    let calls: Vec<(u64, Call)> = (0..per_thread)
                        .map(|_| (rng.u64(0..cfg.keys), cfg.mix.call(&mut rng)))
                        .collect();
                    let mut events = Vec::with_capacity(per_thread);
                    barrier.wait();
                    for (key, call) in calls {
                        let start = clock.now();
                        // SeqCst fences: "returned before the other was called" must mean
                        // that the other call could see this one's effects, which the clock
                        // alone does not give. A call's last store may wait in its core's store
                        // buffer for a few nanoseconds after the call returns (x86 drains it
                        // only at a locked instruction or fence; a lock released with a plain
                        // store, as lanemap's is, leaves it there), and a call on another core
                        // stamped in that gap misses it: a "violation" no program could observe,
                        // since seeing that the first call returned takes synchronization, which
                        // drains the buffer. (Measured on HashMap: witnesses whose get was called
                        // 1 ns and 18 ns after the insert it missed returned.) With a fence
                        // after each return and before each call, wall-clock order between a
                        // return and a call implies their fences' order, so happens-before, as
                        // the logical clock gives under Miri.
                        fence(Ordering::SeqCst);
                        let ret = apply(map, key, call);
                        fence(Ordering::SeqCst);
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
        for worker in workers {
            history.extend(worker.join().expect("a stress thread panicked"));
        }
    });
    history
}

/// A failure found by [`stress`]: the violation and how to replay the round.
#[derive(Debug)]
pub struct Failure {
    /// The round's seed.
    pub seed: u64,
    /// The configuration.
    pub cfg: Stress,
    /// The shrunk witness.
    pub violation: Box<Violation>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "round with seed {:#x}: {} threads, {} keys, mix {}, {} ops",
            self.seed, self.cfg.threads, self.cfg.keys, self.cfg.mix.name, self.cfg.ops_per_round
        )?;
        write!(f, "{}", self.violation)
    }
}

/// Runs rounds of `cfg` on fresh maps until `total_ops` operations have been checked, or until
/// a round fails.
///
/// # Errors
/// The first round whose history is not linearizable.
pub fn stress<M: CheckedMap>(
    cfg: &Stress,
    total_ops: usize,
    seed: u64,
) -> Result<Checked, Failure> {
    let mut done = Checked::default();
    let mut round = 0u64;
    while done.ops < total_ops {
        let seed = seed.wrapping_add(round.wrapping_mul(0xA076_1D64_78BD_642F));
        let map = M::with_capacity(cfg.capacity);
        let history = run_round(&map, cfg, seed);
        match checker::check(&history) {
            Ok(checked) => {
                done.ops += checked.ops;
                done.keys += checked.keys;
            }
            Err(violation) => {
                return Err(Failure {
                    seed,
                    cfg: *cfg,
                    violation,
                });
            }
        }
        round += 1;
    }
    Ok(done)
}
