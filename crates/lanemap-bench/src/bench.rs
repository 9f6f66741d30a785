//! Runs a [`Plan`]: every block's repetitions with the maps interleaved, then the growth and
//! memory trials, with a progress bar, stopping cleanly at Ctrl-C.

use crate::maps::{BuildConfig, Family, MapEntry};
use crate::plan::{Plan, cores};
use crate::results::{Block, GrowthRow, MemoryRow, Results};
use crate::runner::{Outcome, Task, ThroughputTask};
use crate::stream::{Op, StreamSpec};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::{AtomicBool, Ordering};

/// Runs `plan`. `stop` is polled between trials (and inside duration trials): once set, the
/// run ends and returns what it measured so far, marked as interrupted.
pub fn execute(plan: &Plan, stop: &AtomicBool, show_progress: bool) -> Results {
    let progress = progress_bar(plan.trial_count(), show_progress);
    let mut results = Results {
        blocks: Vec::new(),
        growth: Vec::new(),
        memory: Vec::new(),
        interrupted: false,
    };
    let limit = plan.maps.iter().find(|m| m.family == Family::Limit);
    let contenders: Vec<&MapEntry> = plan
        .maps
        .iter()
        .filter(|m| m.family != Family::Limit)
        .collect();
    // Relaxed: the flag carries no data.
    let stopped = || stop.load(Ordering::Relaxed);

    'cases: for case in &plan.cases {
        // The limit always runs the one-thread stream of the case.
        let limit_spec = StreamSpec::new(case, 1, plan.ops, plan.seed);
        let limit_streams = limit_spec.generate();
        for &threads in &plan.threads {
            let spec = StreamSpec::new(case, threads, plan.ops, plan.seed);
            let streams = if threads == 1 {
                limit_streams.clone()
            } else {
                spec.generate()
            };
            let mut block = Block::new(case.clone(), threads, cores());
            progress.set_message(format!("{} · {threads} threads", case.label()));
            for rep in 0..plan.reps {
                // Everyone runs once per repetition; rotating the order spreads any drift.
                let mut order: Vec<&MapEntry> = contenders.iter().copied().chain(limit).collect();
                let len = order.len();
                order.rotate_left(rep % len.max(1));
                for entry in order {
                    if stopped() {
                        results.interrupted = true;
                        results.blocks.push(block);
                        break 'cases;
                    }
                    let (spec, streams): (&StreamSpec, &[Vec<Op>]) =
                        if entry.family == Family::Limit {
                            (&limit_spec, &limit_streams)
                        } else {
                            (&spec, &streams)
                        };
                    let task = Task::Throughput(ThroughputTask {
                        spec,
                        streams,
                        build: BuildConfig {
                            capacity: if case.workload.grows() {
                                0
                            } else {
                                spec.space as usize
                            },
                            shards: entry.shards.or(plan.shards),
                        },
                        duration: plan.duration,
                        sample_every: plan.sample_every,
                        stop,
                    });
                    if let Outcome::Throughput {
                        ops,
                        seconds,
                        latency,
                    } = run(plan, entry, &task)
                    {
                        let mops = ops as f64 / seconds.max(1e-9) / 1e6;
                        block.record(&entry.name, entry.family, spec.threads, mops, &latency);
                    }
                    progress.inc(1);
                }
            }
            results.blocks.push(block);
        }
    }

    if plan.growth_inserts > 0 && !results.interrupted {
        progress.set_message(format!(
            "resize pauses: {} inserts from empty",
            plan.growth_inserts
        ));
        // Several repetitions, maps interleaved: a preemption hits one repetition's worst
        // insert, a resize pause hits every repetition's, so the median of the maxima keeps
        // the pauses and drops most of the scheduler's noise.
        let mut rows: Vec<GrowthRow> = Vec::new();
        'reps: for rep in 0..plan.growth_reps() {
            let mut order: Vec<&MapEntry> = plan.maps.iter().collect();
            let len = order.len().max(1);
            order.rotate_left(rep % len);
            for entry in order {
                if stopped() {
                    results.interrupted = true;
                    break 'reps;
                }
                let task = Task::Growth {
                    inserts: plan.growth_inserts,
                };
                if let Outcome::Growth {
                    inserts,
                    seconds,
                    latency,
                } = run(plan, entry, &task)
                {
                    let mops = inserts as f64 / seconds.max(1e-9) / 1e6;
                    match rows.iter_mut().find(|r| r.map == entry.name) {
                        Some(row) => row.record(mops, &latency),
                        None => rows.push(GrowthRow::new(
                            &entry.name,
                            entry.family,
                            inserts,
                            mops,
                            latency,
                        )),
                    }
                }
                progress.inc(1);
            }
        }
        // Registry order, whatever order they ran in.
        rows.sort_by_key(|r| plan.maps.iter().position(|m| m.name == r.map));
        results.growth = rows;
    }

    if plan.memory_entries > 0 && !results.interrupted {
        progress.set_message(format!("memory: {} entries", plan.memory_entries));
        for entry in &plan.maps {
            if stopped() {
                results.interrupted = true;
                break;
            }
            let task = Task::Memory {
                entries: plan.memory_entries,
            };
            if let Outcome::Memory {
                entries,
                filled_bytes,
                emptied_bytes,
                dropped_bytes,
            } = run(plan, entry, &task)
            {
                results.memory.push(MemoryRow {
                    map: entry.name.clone(),
                    family: entry.family,
                    entries,
                    payload_bytes: 8 + plan.value_bytes,
                    bytes_per_entry: filled_bytes as f64 / entries.max(1) as f64,
                    vs_limit: None,
                    bytes_after_removing_all: emptied_bytes,
                    bytes_after_drop: dropped_bytes,
                });
            }
            progress.inc(1);
        }
    }

    progress.finish_and_clear();
    results.summarize();
    results
}

fn run(plan: &Plan, entry: &MapEntry, task: &Task<'_>) -> Outcome {
    (entry.runner(plan.default_hasher, plan.value_bytes))(task)
}

fn progress_bar(len: u64, show: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(len),
        if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {pos}/{len} trials, ~{eta} left · {msg}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar
}
