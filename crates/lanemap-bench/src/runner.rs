//! Measures one map on one task: a throughput trial, a growth trial or a memory trial.

use crate::latency::{OpHistograms, new_histogram};
use crate::maps::{BenchMap, BuildConfig, MapHandle};
use crate::memory;
use crate::stream::{Op, OpKind, StreamSpec, key_of};
use crate::value::Value;
use hdrhistogram::Histogram;
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How often (in operations) a handle's `tick` runs, letting guard-holding maps re-pin.
const TICK_EVERY: usize = 512;

/// What to measure.
pub enum Task<'a> {
    /// Threads run their pre-generated streams against one shared map.
    Throughput(ThroughputTask<'a>),
    /// One thread inserts `inserts` new keys into an empty map, timing every insert.
    Growth {
        /// Number of inserts.
        inserts: u64,
    },
    /// One thread fills a map with `entries` entries, then removes them all, counting bytes.
    Memory {
        /// Number of entries.
        entries: u64,
    },
}

/// A throughput trial.
pub struct ThroughputTask<'a> {
    /// The configuration the streams were generated from (prefill, thread count).
    pub spec: &'a StreamSpec,
    /// One stream per thread.
    pub streams: &'a [Vec<Op>],
    /// How to build the map.
    pub build: BuildConfig,
    /// Run for this long, replaying the streams, instead of running each stream once.
    pub duration: Option<Duration>,
    /// Time one operation in this many.
    pub sample_every: usize,
    /// Set by Ctrl-C: ends a duration run early.
    pub stop: &'a AtomicBool,
}

/// What a task measured.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one outcome per trial, moved once"
)]
pub enum Outcome {
    /// From [`Task::Throughput`].
    Throughput {
        /// Operations completed by all threads.
        ops: u64,
        /// Wall time from the first thread's start to the last thread's end.
        seconds: f64,
        /// Sampled latencies.
        latency: OpHistograms,
    },
    /// From [`Task::Growth`].
    Growth {
        /// Inserts done.
        inserts: u64,
        /// Time for all of them.
        seconds: f64,
        /// Every insert's latency, in nanoseconds.
        latency: Histogram<u64>,
    },
    /// From [`Task::Memory`].
    Memory {
        /// Entries inserted.
        entries: u64,
        /// Bytes allocated by the full map (including its own struct's heap parts).
        filled_bytes: i64,
        /// Bytes still allocated after every entry was removed.
        emptied_bytes: i64,
        /// Bytes still allocated after the map was dropped (should be 0).
        dropped_bytes: i64,
    },
}

/// Runs `task` on a map of type `M` holding values of type `V`.
pub fn run<M: BenchMap<V>, V: Value>(task: &Task<'_>) -> Outcome {
    match task {
        Task::Throughput(task) => throughput::<M, V>(task),
        Task::Growth { inserts } => growth::<M, V>(*inserts),
        Task::Memory { entries } => memory_use::<M, V>(*entries),
    }
}

fn throughput<M: BenchMap<V>, V: Value>(task: &ThroughputTask<'_>) -> Outcome {
    let map = M::build(&task.build);
    let threads = task.streams.len();
    let barrier = Barrier::new(threads);
    let results: Vec<_> = thread::scope(|scope| {
        let workers: Vec<_> = task
            .streams
            .iter()
            .enumerate()
            .map(|(t, stream)| {
                let (map, barrier) = (&map, &barrier);
                scope.spawn(move || {
                    let mut handle = map.handle();
                    for index in task.spec.prefill_indices(t) {
                        let key = key_of(index);
                        handle.insert(key, V::from_key(key));
                    }
                    barrier.wait();
                    let start = Instant::now();
                    let deadline = task.duration.map(|d| start + d);
                    let mut latency = OpHistograms::default();
                    let ops = drive(&mut handle, stream, task, deadline, &mut latency);
                    (start, Instant::now(), ops, latency)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a benchmark thread panicked"))
            .collect()
    });
    // Drop the map outside the timed region (papaya and flurry free a lot here).
    drop(map);
    let first_start = results
        .iter()
        .map(|r| r.0)
        .min()
        .expect("at least one thread");
    let last_end = results
        .iter()
        .map(|r| r.1)
        .max()
        .expect("at least one thread");
    let mut latency = OpHistograms::default();
    for result in &results {
        latency.merge(&result.3);
    }
    Outcome::Throughput {
        ops: results.iter().map(|r| r.2).sum(),
        seconds: (last_end - first_start).as_secs_f64(),
        latency,
    }
}

/// Runs a stream (once, or replayed until the deadline), timing the first operation of every
/// chunk of `sample_every`. Returns the number of operations done.
fn drive<V: Value, H: MapHandle<V>>(
    handle: &mut H,
    stream: &[Op],
    task: &ThroughputTask<'_>,
    deadline: Option<Instant>,
    latency: &mut OpHistograms,
) -> u64 {
    let mut done = 0u64;
    let mut sink = 0u64;
    let mut since_tick = 0usize;
    loop {
        for chunk in stream.chunks(task.sample_every.max(1)) {
            let (&first, rest) = chunk.split_first().expect("chunks are never empty");
            let begin = Instant::now();
            sink ^= execute(handle, first);
            let end = Instant::now();
            latency.record(first.kind(), (end - begin).as_nanos() as u64);
            for &op in rest {
                sink ^= execute(handle, op);
            }
            done += chunk.len() as u64;
            since_tick += chunk.len();
            if since_tick >= TICK_EVERY {
                handle.tick();
                since_tick = 0;
            }
            // Relaxed: the stop flag carries no data, only "finish soon".
            if deadline.is_some_and(|d| end >= d) || task.stop.load(Ordering::Relaxed) {
                black_box(sink);
                return done;
            }
        }
        if deadline.is_none() {
            black_box(sink);
            return done;
        }
    }
}

/// Runs one operation; returns something derived from its result so it cannot be elided.
#[inline(always)]
fn execute<V: Value, H: MapHandle<V>>(handle: &mut H, op: Op) -> u64 {
    let key = op.key();
    match op.kind() {
        OpKind::Get => handle.get(key).unwrap_or(0),
        OpKind::Insert => {
            handle.insert(key, V::from_key(key));
            1
        }
        OpKind::Remove => u64::from(handle.remove(key)),
        OpKind::Update => u64::from(handle.update(key)),
    }
}

fn growth<M: BenchMap<V>, V: Value>(inserts: u64) -> Outcome {
    let map = M::build(&BuildConfig::default());
    let mut latency = new_histogram();
    let started = Instant::now();
    {
        let mut handle = map.handle();
        for index in 0..inserts {
            let key = key_of(index);
            let begin = Instant::now();
            handle.insert(key, V::from_key(key));
            latency.saturating_record(begin.elapsed().as_nanos().max(1) as u64);
            // Re-pin as the throughput trials do (outside the timed insert).
            if index % TICK_EVERY as u64 == TICK_EVERY as u64 - 1 {
                handle.tick();
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(map);
    Outcome::Growth {
        inserts,
        seconds,
        latency,
    }
}

fn memory_use<M: BenchMap<V>, V: Value>(entries: u64) -> Outcome {
    let base = memory::start_counting();
    // lanemap::HashMap maps its large tables straight from the kernel, past the allocator.
    let live = || memory::live_bytes() + lanemap::mapped_table_bytes() as i64;
    let base = base + lanemap::mapped_table_bytes() as i64;
    let map = M::build(&BuildConfig::default());
    let (filled_bytes, emptied_bytes) = {
        let mut handle = map.handle();
        for index in 0..entries {
            let key = key_of(index);
            handle.insert(key, V::from_key(key));
            if index % TICK_EVERY as u64 == TICK_EVERY as u64 - 1 {
                handle.tick();
            }
        }
        let filled = live() - base;
        for index in 0..entries {
            handle.remove(key_of(index));
            if index % TICK_EVERY as u64 == TICK_EVERY as u64 - 1 {
                handle.tick();
            }
        }
        // Let guard-based maps hand back what they can before we look.
        handle.tick();
        (filled, live() - base)
    };
    drop(map);
    let dropped_bytes = live() - base;
    memory::stop_counting();
    Outcome::Memory {
        entries,
        filled_bytes,
        emptied_bytes,
        dropped_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::registry;
    use crate::workload::{Case, Dist, Workload};

    #[test]
    fn every_map_completes_every_kind_of_task() {
        let stop = AtomicBool::new(false);
        let case = Case {
            workload: Workload::by_name("exchange").unwrap().remove(0),
            dist: Dist::Uniform,
            keys: 2_000,
        };
        for entry in registry() {
            let threads = if entry.family == crate::maps::Family::Limit {
                1
            } else {
                2
            };
            let spec = StreamSpec::new(&case, threads, 10_000, 1);
            let streams = spec.generate();
            let task = Task::Throughput(ThroughputTask {
                spec: &spec,
                streams: &streams,
                build: BuildConfig {
                    capacity: 2_000,
                    shards: None,
                },
                duration: None,
                sample_every: 16,
                stop: &stop,
            });
            for bytes in [8, 64] {
                for default_hasher in [false, true] {
                    let run = entry.runner(default_hasher, bytes);
                    match run(&task) {
                        Outcome::Throughput { ops, latency, .. } => {
                            assert_eq!(ops, 10_000, "{}", entry.name);
                            assert!(latency.all().is_some());
                        }
                        other => panic!("{other:?}"),
                    }
                }
            }
            let run = entry.runner(false, 8);
            assert!(matches!(
                run(&Task::Growth { inserts: 1000 }),
                Outcome::Growth { inserts: 1000, .. }
            ));
            assert!(matches!(
                run(&Task::Memory { entries: 1000 }),
                Outcome::Memory { .. }
            ));
        }
    }
}
